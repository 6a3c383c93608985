package connector

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateSSIN(t *testing.T) {
	tests := []struct {
		name   string
		ssin   string
		reason string // "" = valid
	}{
		{"born before 2000", "93051822361", ""},
		{"born before 2000 bis", "85073003328", ""},
		{"born in 2000 or later", "00012556777", ""},
		{"born in 2017", "17010100171", ""},
		{"neither rule", "00012556799", "checksum"},
		{"old rule check on a post-2000 number is still accepted", "17010100142", ""},
		{"wrong check", "93051822362", "checksum"},
		{"too short", "9305182236", "length"},
		{"too long", "930518223611", "length"},
		{"letters", "9305182236A", "digits"},
		{"month 13", "93131822361", "date"},
		{"day 32", "93053222361", "date"},
		{"empty", "", "length"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateSSIN(tc.ssin)
			if tc.reason == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidSSIN)
			var se *SSINError
			require.True(t, errors.As(err, &se))
			require.Equal(t, tc.reason, se.Reason)
			if len(tc.ssin) > 3 {
				require.NotContains(t, err.Error(), tc.ssin, "the error must not echo the ssin")
			}
		})
	}
}

func TestNormalizeSSIN(t *testing.T) {
	n, err := NormalizeSSIN("93.05.18-223.61")
	require.NoError(t, err)
	require.Equal(t, "93051822361", n)
	_, err = NormalizeSSIN("93.05.18-223.62")
	require.ErrorIs(t, err, ErrInvalidSSIN)
	_, err = NormalizeSSIN("930518223619999999999999")
	require.ErrorIs(t, err, ErrInvalidSSIN)
}

func FuzzValidateSSIN(f *testing.F) {
	for _, s := range []string{"93051822361", "00012556777", "", "abc", "99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateSSIN(s)
		if err != nil && len(s) == 11 {
			require.NotContains(t, err.Error(), s)
		}
	})
}
