package templating

import (
	"strconv"
	"strings"
)

// Var identifies one variable. The zero Var is not a variable.
type Var uint8

// The variables, in the order of the vendor's tables. ANI, CUID, MENU_ID and
// TYPE come from the lookup URL table; the rest from the endpoint parameter
// table.
const (
	AgentID               Var = iota + 1 // {AGENT_ID}
	AgentCustomID                        // {AGENT_CUSTOM_ID}
	AgentEmail                           // {AGENT_EMAIL}
	Name                                 // {NAME}
	FirstName                            // {FIRST_NAME}
	LastName                             // {LAST_NAME}
	UjetID                               // {UJET_ID}
	Email                                // {EMAIL}
	SessionType                          // {SESSION_TYPE}
	PhoneNumber                          // {PHONE_NUMBER}
	CallID                               // {Call_ID}
	ChatID                               // {Chat_ID}
	Lang                                 // {LANG}
	CustomUserID                         // {CUSTOM_USER_ID}
	AccountID                            // {ACCOUNT_ID}
	RecordID                             // {RECORD_ID}
	SessionID                            // {SESSION_ID}
	MenuPath                             // {MENU_PATH}
	OutboundPhoneNumber                  // {OUTBOUND_PHONE_NUMBER}
	QueueName                            // {QUEUE_NAME}
	QueueID                              // {QUEUE_ID}
	SmartActionSessionID                 // {SMART_ACTION_SESSION_ID}
	Rating                               // {RATING}
	Feedback                             // {FEEDBACK}
	CallDuration                         // {CALL_DURATION}
	HoldTime                             // {HOLD_TIME}
	WaitTime                             // {WAIT_TIME}
	DeviceType                           // {DEVICE_TYPE}
	DisconnectedBy                       // {DISCONNECTED_BY}
	Channel                              // {CHANNEL}
	TicketSubject                        // {TICKET_SUBJECT}
	TicketDescription                    // {TICKET_DESCRIPTION}
	TicketDescriptionHTML                // {TICKET_DESCRIPTION_HTML}
	CommentBody                          // {COMMENT_BODY}
	FileData                             // {FILE_DATA}
	AttachmentID                         // {ATTACHMENT_ID}
	ANI                                  // {ANI}  (lookup URLs: phone number as given)
	CUID                                 // {CUID} (lookup URLs: custom user id)
	MenuID                               // {MENU_ID}
	Type                                 // {TYPE}
	NumVars                              // count sentinel, not a variable
)

// varNames is indexed by Var. Call_ID and Chat_ID keep the vendor's mixed
// case because existing configurations are written that way.
var varNames = [NumVars]string{
	AgentID:               "AGENT_ID",
	AgentCustomID:         "AGENT_CUSTOM_ID",
	AgentEmail:            "AGENT_EMAIL",
	Name:                  "NAME",
	FirstName:             "FIRST_NAME",
	LastName:              "LAST_NAME",
	UjetID:                "UJET_ID",
	Email:                 "EMAIL",
	SessionType:           "SESSION_TYPE",
	PhoneNumber:           "PHONE_NUMBER",
	CallID:                "Call_ID",
	ChatID:                "Chat_ID",
	Lang:                  "LANG",
	CustomUserID:          "CUSTOM_USER_ID",
	AccountID:             "ACCOUNT_ID",
	RecordID:              "RECORD_ID",
	SessionID:             "SESSION_ID",
	MenuPath:              "MENU_PATH",
	OutboundPhoneNumber:   "OUTBOUND_PHONE_NUMBER",
	QueueName:             "QUEUE_NAME",
	QueueID:               "QUEUE_ID",
	SmartActionSessionID:  "SMART_ACTION_SESSION_ID",
	Rating:                "RATING",
	Feedback:              "FEEDBACK",
	CallDuration:          "CALL_DURATION",
	HoldTime:              "HOLD_TIME",
	WaitTime:              "WAIT_TIME",
	DeviceType:            "DEVICE_TYPE",
	DisconnectedBy:        "DISCONNECTED_BY",
	Channel:               "CHANNEL",
	TicketSubject:         "TICKET_SUBJECT",
	TicketDescription:     "TICKET_DESCRIPTION",
	TicketDescriptionHTML: "TICKET_DESCRIPTION_HTML",
	CommentBody:           "COMMENT_BODY",
	FileData:              "FILE_DATA",
	AttachmentID:          "ATTACHMENT_ID",
	ANI:                   "ANI",
	CUID:                  "CUID",
	MenuID:                "MENU_ID",
	Type:                  "TYPE",
}

// String returns the canonical name without braces, such as "AGENT_ID" or
// "Call_ID".
func (v Var) String() string {
	if v.valid() {
		return varNames[v]
	}
	return "Var(" + strconv.Itoa(int(v)) + ")"
}

func (v Var) valid() bool { return v > 0 && v < NumVars }

// LookupVar finds a variable by its name without braces. Case is ignored, so
// "CALL_ID" and "Call_ID" are the same variable.
func LookupVar(name string) (Var, bool) {
	// A linear scan over 40 short names is fast enough for parse time and
	// needs no allocation for case folding.
	for v := Var(1); v < NumVars; v++ {
		if strings.EqualFold(varNames[v], name) {
			return v, true
		}
	}
	return 0, false
}
