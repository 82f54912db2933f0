package templating

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePhoneFormat(t *testing.T) {
	tests := []struct {
		in   string
		want PhoneFormat
	}{
		{"", PhoneAutomatic},
		{"automatic", PhoneAutomatic},
		{"e164", PhoneE164},
		{"E164", PhoneE164},
		{" us_local ", PhoneUSLocal},
		{"US_LOCAL_STANDARD", PhoneUSLocalStandard},
		{"international", PhoneInternational},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePhoneFormat(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}

	t.Run("unknown", func(t *testing.T) {
		_, err := ParsePhoneFormat("e.164")
		require.Error(t, err)
		assert.Contains(t, err.Error(), `"e.164"`)
		for _, f := range phoneFormats {
			assert.Contains(t, err.Error(), string(f))
		}
	})
}

func TestFormatPhone(t *testing.T) {
	type want struct{ create, search string }
	us := map[PhoneFormat]want{
		PhoneAutomatic:       {"+1 222 333 4444", "*222*333*4444"},
		"":                   {"+1 222 333 4444", "*222*333*4444"},
		PhoneE164:            {"+12223334444", "+12223334444"},
		PhoneUSLocal:         {"2223334444", "2223334444"},
		PhoneUSLocalStandard: {"(222) 333-4444", "(222) 333-4444"},
		PhoneInternational:   {"+1 222 333 4444", "+1 222 333 4444"},
	}
	// The US-only formats give the UK number in its own national form.
	uk := map[PhoneFormat]want{
		PhoneAutomatic:       {"+44 20 7946 0958", "*20*7946*0958"},
		PhoneE164:            {"+442079460958", "+442079460958"},
		PhoneUSLocal:         {"02079460958", "02079460958"},
		PhoneUSLocalStandard: {"020 7946 0958", "020 7946 0958"},
		PhoneInternational:   {"+44 20 7946 0958", "+44 20 7946 0958"},
	}
	tests := []struct {
		raw  string
		want map[PhoneFormat]want
	}{
		{"+12223334444", us},
		{"2223334444", us},
		{"(222) 333-4444", us},
		{"1 222 333 4444", us},
		{" +1-222-333-4444 ", us},
		{"+1 222 333 4444 ext. 55", us},
		{"+442079460958", uk},
		{"+44 (0)20 7946 0958", uk},
	}
	for _, tt := range tests {
		for f, w := range tt.want {
			t.Run(tt.raw+"/"+string(f), func(t *testing.T) {
				got, err := FormatPhone(tt.raw, f, Create)
				require.NoError(t, err)
				assert.Equal(t, w.create, got, "create")

				got, err = FormatPhone(tt.raw, f, Search)
				require.NoError(t, err)
				assert.Equal(t, w.search, got, "search")
			})
		}
	}
}

func TestFormatPhoneEmpty(t *testing.T) {
	for _, raw := range []string{"", "   "} {
		t.Run(raw, func(t *testing.T) {
			got, err := FormatPhone(raw, PhoneE164, Create)
			require.NoError(t, err)
			assert.Empty(t, got)
		})
	}
}

func TestFormatPhoneErrors(t *testing.T) {
	tests := []struct {
		raw string
		f   PhoneFormat
	}{
		{"not a phone", PhoneE164},
		{"+999 123 456", PhoneE164},
		{"12", PhoneAutomatic},
		{"+1 222", PhoneInternational},
		{"+1 222 333 4444 5555 6666", PhoneUSLocal},
		{"anonymous", PhoneAutomatic},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := FormatPhone(tt.raw, tt.f, Create)
			require.ErrorIs(t, err, ErrPhoneNumber)
			assert.Empty(t, got)
		})
	}

	t.Run("unknown format", func(t *testing.T) {
		_, err := FormatPhone("+12223334444", "e.164", Create)
		require.Error(t, err)
		assert.NotErrorIs(t, err, ErrPhoneNumber)
	})
}
