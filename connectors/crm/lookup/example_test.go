package lookup_test

import (
	"fmt"

	"github.com/crmsync/crmsync/connectors/crm/lookup"
)

func Example() {
	urls, err := lookup.Compile(lookup.Config{
		IVR: "https://crm.example.com/find?ani={ANI}&menu={MENU_PATH}&email={EMAIL}",
		Web: "https://crm.example.com/find?cuid={CUID}&email={EMAIL}",
		OpenCustom: map[string]string{
			"Orders": "https://crm.example.com/accounts/{ACCOUNT_ID}?phone={PHONE_NUMBER}",
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	call := lookup.Session{ANI: "+14155550100", MenuPath: "Orders/Order info", Channel: "voice_call", Type: "IVR_Call"}
	fmt.Println(urls.Lookup(call))

	chat := lookup.Session{CUID: "c-7", Email: "ada@example.com", Channel: "chat", Type: "Mobile"}
	fmt.Println(urls.Lookup(chat))

	fmt.Println(urls.OpenCustom("Orders", lookup.Session{AccountID: "tmp 9", PhoneNumber: "+14155550100"}))

	_, err = lookup.Compile(lookup.Config{IVR: "https://crm.example.com/find?ani={PHONE}"})
	fmt.Println(err)
	// Output:
	// https://crm.example.com/find?ani=%2B14155550100&menu=Orders/Order%20info
	// https://crm.example.com/find?cuid=c-7&email=ada@example.com
	// https://crm.example.com/accounts/tmp%209?phone=%2B14155550100
	// ivr_url: column 34: unknown variable {PHONE}; allowed variables are {ANI}, {CUID}, {EMAIL}, {MENU_PATH}, {MENU_ID}, {CHANNEL}, {TYPE}
}
