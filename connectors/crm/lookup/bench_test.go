package lookup_test

import (
	"testing"

	"github.com/crmsync/crmsync/connectors/crm/lookup"
)

func BenchmarkLookup(b *testing.B) {
	u := compile(b, lookup.Config{
		IVR: "https://crm.example.com/find?ani={ANI}&menu={MENU_PATH}&menu_id={MENU_ID}&type={TYPE}&source=ccai",
		Web: "https://crm.example.com/find?cuid={CUID}&email={EMAIL}&channel={CHANNEL}",
	})
	sessions := map[string]lookup.Session{
		"ivr":    fullSession(),
		"web":    {CUID: "cuid-42", Email: "zoë+test@example.com", Channel: "chat", Type: "Web"},
		"sparse": {ANI: "+14155550100", Channel: "voice_call", Type: "IVR_Call"},
	}
	for name, s := range sessions {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if u.Lookup(s) == "" {
					b.Fatal("empty lookup URL")
				}
			}
		})
	}
}
