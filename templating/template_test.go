package templating

import (
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testUUID = "3f2b8c1e-9a47-4d2e-8b6a-0c5e7d9f1a23"

// sessionValues is a caller with a name, email and phone, no agent yet and
// no account found.
func sessionValues(tb testing.TB) *Values {
	tb.Helper()
	v := NewValues(Input{
		Name:      "James Bond",
		Email:     "james.bond@007",
		Phone:     "+12223334444",
		CallID:    "1234",
		Lang:      "en",
		QueueName: "Orders",
	}, PhoneE164)
	return &v
}

// executeCases run against sessionValues.
var executeCases = []struct {
	desc, src, want string
}{
	{"empty", "", ""},
	{"literal", "open", "open"},
	{"literal keeps blanks", "  open  ", "  open  "},
	{"literal parentheses", "(a)) and ((b", "(a)) and ((b"},
	{"literal starting with quote", `"quoted"`, `"quoted"`},
	{"variable", "{EMAIL}", "james.bond@007"},
	{"empty variable", "{AGENT_EMAIL}", ""},
	{"variable name ignores case", "{email}/{call_id}/{Call_ID}/{CALL_ID}", "james.bond@007/1234/1234/1234"},
	{"text with variable", "(Email:equals:{EMAIL})", "(Email:equals:james.bond@007)"},
	{"text with empty variable is dropped", "(Id:equals:{ACCOUNT_ID})", ""},
	{"one of two variables set", "Call {Call_ID} from {AGENT_EMAIL}", "Call 1234 from "},
	{"all variables empty", "{RATING} / {FEEDBACK}", ""},
	{"text keeps blanks around variables", "  {LANG}  ", "  en  "},
	{"escaped braces", "{{literal}} {LANG}", "{literal} en"},
	{"escaped braces alone", "{{}}", "{}"},
	{"variable in escaped braces", "{{{LANG}}}", "{en}"},
	{"first and last name", "{FIRST_NAME} {LAST_NAME}", "James Bond"},
	{"phone", "{PHONE_NUMBER}", "+12223334444"},

	{"default value first", "=DEFAULT_VALUE({EMAIL}, nobody@example.com)", "james.bond@007"},
	{"default value fallback", "=DEFAULT_VALUE({AGENT_EMAIL}, support@example.com)", "support@example.com"},
	{"default value three", "=DEFAULT_VALUE({AGENT_EMAIL}, {RATING}, {LANG})", "en"},
	{"default value all empty", "=DEFAULT_VALUE({AGENT_EMAIL}, {RATING})", ""},
	{"default value text pieces", "=DEFAULT_VALUE(agent:{AGENT_EMAIL}, queue:{QUEUE_NAME})", "queue:Orders"},
	{"function name ignores case", "=default_Value({AGENT_EMAIL}, x)", "x"},

	{"concat or", "=CONCAT_OR({EMAIL}, {LANG}, {QUEUE_NAME})", "james.bond@007 or en or Orders"},
	{"concat or skips empty", "=CONCAT_OR({AGENT_EMAIL}, {EMAIL}, {RATING}, {LANG}, {FEEDBACK})", "james.bond@007 or en"},
	{"concat or all empty", "=CONCAT_OR({AGENT_EMAIL}, {RATING})", ""},
	{"concat or one argument", "=CONCAT_OR({EMAIL})", "james.bond@007"},
	{"concat or literal stays", "=CONCAT_OR(status:open, (Id:{ACCOUNT_ID}))", "status:open"},
	{"concat and", "=CONCAT_AND((Email:equals:{EMAIL}), (Lang:equals:{LANG}), (Id:equals:{ACCOUNT_ID}))", "(Email:equals:james.bond@007) and (Lang:equals:en)"},
	{"concat and nested parentheses", "=CONCAT_AND(((a) (b {LANG})), c)", "((a) (b en)) and c"},
	{"arguments trimmed", "=CONCAT_AND(  a  ,\tb\t,\n{LANG}\n)", "a and b and en"},
	{"blanks around the call", "=  CONCAT_OR ( a , b )  ", "a or b"},

	{"nested with =", "=CONCAT_OR(=CONCAT_AND((e:{EMAIL}), (l:{LANG})), (q:{QUEUE_NAME}))", "(e:james.bond@007) and (l:en) or (q:Orders)"},
	{"nested without =", "=CONCAT_AND(DEFAULT_VALUE({AGENT_EMAIL}, fallback), CONCAT_OR({RATING}, {LANG}))", "fallback and en"},
	{"nested empty is skipped", "=CONCAT_OR(CONCAT_AND({RATING}, {FEEDBACK}), {LANG})", "en"},
	{"nested deeper", "=DEFAULT_VALUE(CONCAT_OR({RATING}, DEFAULT_VALUE({FEEDBACK}, {AGENT_ID})), =concat_and(x, {LANG}))", "x and en"},
	{"unknown name is text", "=CONCAT_OR(Upper(x), y)", "Upper(x) or y"},

	{"quoted comma", `=CONCAT_OR("a, b", {LANG})`, "a, b or en"},
	{"quoted parenthesis", `=CONCAT_OR("(open", "close)")`, "(open or close)"},
	{"quoted escapes", `=CONCAT_OR("say \"hi\" \\ bye")`, `say "hi" \ bye`},
	{"quoted other backslash", `=CONCAT_OR("C:\temp")`, `C:\temp`},
	{"quoted keeps blanks", `=CONCAT_AND("  a  ", b)`, "  a   and b"},
	{"quoted with variable", `=CONCAT_OR("Hello, {FIRST_NAME}")`, "Hello, James"},
	{"quoted with empty variable", `=CONCAT_OR("Hi, {AGENT_EMAIL}", x)`, "x"},
	{"quoted empty", `=DEFAULT_VALUE("", x)`, "x"},
	{"quoted equals", `=CONCAT_OR("=5")`, "=5"},
	{"quoted braces", `=CONCAT_OR("{{x}}")`, "{x}"},
	{"quote inside text", `=CONCAT_OR(say "hi", x)`, `say "hi" or x`},
}

func TestExecute(t *testing.T) {
	v := sessionValues(t)
	for _, tt := range executeCases {
		t.Run(tt.desc, func(t *testing.T) {
			tmpl, err := Parse(tt.src)
			require.NoError(t, err)
			assert.Equal(t, tt.want, tmpl.Execute(v, Create))
			assert.Equal(t, tt.src, tmpl.String())
		})
	}
}

// The vendor's CONCAT_OR example, row by row.
func TestConcatOrVendorTable(t *testing.T) {
	tmpl := MustParse("=CONCAT_OR((Id:equals:{ACCOUNT_ID}), (Phone:equals:{PHONE_NUMBER}), (Email:equals:{EMAIL}))")
	tests := []struct {
		keys string
		in   Input
		want string
	}{
		{
			"ACCOUNT_ID",
			Input{AccountID: testUUID},
			"(Id:equals:" + testUUID + ")",
		},
		{
			"ACCOUNT_ID, EMAIL",
			Input{AccountID: testUUID, Email: "james.bond@007"},
			"(Id:equals:" + testUUID + ") or (Email:equals:james.bond@007)",
		},
		{
			"PHONE_NUMBER, EMAIL",
			Input{Phone: "+12223334444", Email: "james.bond@007"},
			"(Phone:equals:+12223334444) or (Email:equals:james.bond@007)",
		},
		{"none", Input{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.keys, func(t *testing.T) {
			v := NewValues(tt.in, PhoneE164)
			assert.Equal(t, tt.want, tmpl.Execute(&v, Search))
		})
	}
}

// The vendor's DEFAULT_VALUE example: a record needs an agent email even
// when no agent has answered yet.
func TestDefaultValueAgentEmail(t *testing.T) {
	tmpl := MustParse("=DEFAULT_VALUE({AGENT_EMAIL}, crm-integration@example.com)")
	tests := []struct {
		desc, agent, want string
	}{
		{"answered", "moneypenny@example.com", "moneypenny@example.com"},
		{"abandoned before an agent answered", "", "crm-integration@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			v := NewValues(Input{AgentEmail: tt.agent}, PhoneE164)
			assert.Equal(t, tt.want, tmpl.Execute(&v, Create))
		})
	}
}

func TestExecuteModes(t *testing.T) {
	v := NewValues(Input{Phone: "2223334444"}, PhoneAutomatic)
	tmpl := MustParse("=CONCAT_OR((Phone:equals:{PHONE_NUMBER}), (Ani:{ANI}))")
	assert.Equal(t, "(Phone:equals:+1 222 333 4444) or (Ani:2223334444)", tmpl.Execute(&v, Create))
	assert.Equal(t, "(Phone:equals:*222*333*4444) or (Ani:2223334444)", tmpl.Execute(&v, Search))
}

func TestExecuteNil(t *testing.T) {
	assert.Equal(t, "x", MustParse("=DEFAULT_VALUE({EMAIL}, x)").Execute(nil, Create))
	var tmpl *Template
	assert.Empty(t, tmpl.Execute(sessionValues(t), Create))
}

func TestExecuteLongResult(t *testing.T) {
	long := make([]byte, 1000)
	for i := range long {
		long[i] = 'a' + byte(i%26)
	}
	v := NewValues(Input{Feedback: string(long), Email: "e@x"}, PhoneE164)
	got := MustParse("=CONCAT_AND({FEEDBACK}, {EMAIL}, {FEEDBACK})").Execute(&v, Create)
	assert.Equal(t, string(long)+" and e@x and "+string(long), got)
}

func TestVars(t *testing.T) {
	tests := []struct {
		src  string
		want []Var
	}{
		{"literal", nil},
		{"{EMAIL}", []Var{Email}},
		{"{LANG} {EMAIL} {lang} {Email}", []Var{Lang, Email}},
		{"=CONCAT_OR((Id:equals:{ACCOUNT_ID}), (Phone:equals:{PHONE_NUMBER}), (Email:equals:{EMAIL}))", []Var{AccountID, PhoneNumber, Email}},
		{`=DEFAULT_VALUE("{CUID}", CONCAT_OR({ANI}, {CUID}), {{x}})`, []Var{CUID, ANI}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			tmpl := MustParse(tt.src)
			assert.Equal(t, tt.want, tmpl.Vars())
		})
	}

	t.Run("copy", func(t *testing.T) {
		tmpl := MustParse("{EMAIL}")
		tmpl.Vars()[0] = Lang
		assert.Equal(t, []Var{Email}, tmpl.Vars())
	})
}

// parseErrorCases give the column and message of each syntax error.
var parseErrorCases = []struct {
	desc, src string
	col       int
	msg       string
}{
	{"unknown variable", "{FOO}", 1, "unknown variable {FOO}"},
	{"unknown variable later", "abc {FOO}", 5, "unknown variable {FOO}"},
	{"column counts characters", "héllo → {FOO}", 9, "unknown variable {FOO}"},
	{"lone open brace", "a { b", 3, "{ must start a variable such as {EMAIL}; write {{ for a literal {"},
	{"unclosed variable", "a {EMAIL", 3, "{ must start a variable such as {EMAIL}; write {{ for a literal {"},
	{"empty variable", "{}", 1, "{ must start a variable such as {EMAIL}; write {{ for a literal {"},
	{"blank in variable", "{ EMAIL }", 1, "{ must start a variable such as {EMAIL}; write {{ for a literal {"},
	{"lone close brace", "a } b", 3, "unexpected }; write }} for a literal }"},
	{"close brace after variable", "{LANG}}", 7, "unexpected }; write }} for a literal }"},

	{"equals alone", "=", 2, "expected a function name after ="},
	{"not a name", "=(a)", 2, "expected a function name after ="},
	{"unknown function", "=FOO(a)", 2, "unknown function FOO (valid: DEFAULT_VALUE, CONCAT_OR, CONCAT_AND)"},
	{"no parenthesis", "=CONCAT_OR", 11, "expected ( after CONCAT_OR"},
	{"text instead of parenthesis", "=CONCAT_OR a", 12, "expected ( after CONCAT_OR"},
	{"no arguments", "=CONCAT_OR()", 11, "CONCAT_OR needs at least one argument"},
	{"no arguments blank", "=CONCAT_AND(  )", 12, "CONCAT_AND needs at least one argument"},
	{"default value one argument", "=DEFAULT_VALUE({EMAIL})", 2, "DEFAULT_VALUE needs at least 2 arguments, got 1"},
	{"unclosed call", "=CONCAT_OR(a, b", 11, "CONCAT_OR( has no matching )"},
	{"unclosed call after comma", "=CONCAT_OR(a,", 11, "CONCAT_OR( has no matching )"},
	{"unclosed argument parenthesis", "=CONCAT_OR(a, (b", 15, "( has no matching )"},
	{"argument parenthesis eats the close", "=CONCAT_OR((a, b)", 11, "CONCAT_OR( has no matching )"},
	{"text after call", "=CONCAT_OR(a) x", 15, "unexpected text after the closing ) of CONCAT_OR"},
	{"extra close", "=CONCAT_OR(a))", 14, "unexpected text after the closing ) of CONCAT_OR"},
	{"empty argument", "=CONCAT_OR(a,,b)", 14, `empty argument; write "" for an empty value`},
	{"trailing comma", "=CONCAT_OR(a, )", 15, `empty argument; write "" for an empty value`},
	{"leading comma", "=CONCAT_OR(, a)", 12, `empty argument; write "" for an empty value`},
	{"unclosed quote", `=CONCAT_OR("a, b)`, 12, `quoted argument has no closing "`},
	{"escaped closing quote", `=CONCAT_OR("a\")`, 12, `quoted argument has no closing "`},
	{"text after quote", `=CONCAT_OR("a" b)`, 16, "unexpected text after quoted argument; quote the whole argument"},
	{"unknown nested function", "=CONCAT_OR(=FOO(a))", 13, "unknown function FOO (valid: DEFAULT_VALUE, CONCAT_OR, CONCAT_AND)"},
	{"nested equals alone", "=CONCAT_OR(=(a))", 13, "expected a function name after ="},
	{"nested default value one argument", "=CONCAT_OR(DEFAULT_VALUE(a))", 12, "DEFAULT_VALUE needs at least 2 arguments, got 1"},
	{"text after nested call", "=CONCAT_OR(CONCAT_AND(a) b)", 26, "unexpected text after function call; quote the whole argument"},
	{"unclosed nested call", "=CONCAT_OR(DEFAULT_VALUE(a, b)", 11, "CONCAT_OR( has no matching )"},
	{"unknown variable in argument", "=CONCAT_OR(a, {FOO})", 15, "unknown variable {FOO}"},
	{"unknown variable in quote", `=CONCAT_OR("{FOO}")`, 13, "unknown variable {FOO}"},
	{"close brace in argument", "=CONCAT_OR(a})", 13, "unexpected }; write }} for a literal }"},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range parseErrorCases {
		t.Run(tt.desc, func(t *testing.T) {
			tmpl, err := Parse(tt.src)
			require.Error(t, err)
			assert.Nil(t, tmpl)
			var se *SyntaxError
			require.True(t, errors.As(err, &se), "%T is not a *SyntaxError", err)
			assert.Equal(t, tt.col, se.Col, "column")
			assert.Equal(t, tt.msg, se.Msg)
		})
	}
}

func TestSyntaxErrorString(t *testing.T) {
	_, err := Parse("(Id:equals:{FOO})")
	require.Error(t, err)
	assert.Equal(t, "col 12: unknown variable {FOO}", err.Error())
}

func TestMustParsePanics(t *testing.T) {
	assert.PanicsWithValue(t, "templating: parse {FOO}: col 1: unknown variable {FOO}", func() {
		MustParse("{FOO}")
	})
}

// One set of templates executed from many goroutines, with Values shared
// and copied, must give the same results as one goroutine; run with -race.
func TestExecuteConcurrent(t *testing.T) {
	shared := sessionValues(t)
	tmpls := make([]*Template, len(executeCases))
	for i, tt := range executeCases {
		tmpls[i] = MustParse(tt.src)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			own := *shared
			own.Set(AccountID, "acc")
			for range 100 {
				for i, tmpl := range tmpls {
					v := shared
					if g%2 == 1 {
						v = &own
					}
					got := tmpl.Execute(v, Mode(g%2))
					if v == shared {
						assert.Equal(t, executeCases[i].want, got, executeCases[i].desc)
					}
				}
			}
		})
	}
	wg.Wait()
}
