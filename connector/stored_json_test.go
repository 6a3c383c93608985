package connector

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fill sets every field reachable from v (strings, times, slices of one or two elements) from
// the values given in turn, so that a field added to a stored type shows in the comparison.
func fill(v reflect.Value, texts []string, times []time.Time, n *int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(texts[*n%len(texts)])
		*n++
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(times[*n%len(times)]))
			*n++
			return
		}
		for i := 0; i < v.NumField(); i++ {
			fill(v.Field(i), texts, times, n)
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1+*n%2, 1+*n%2)
		for i := 0; i < s.Len(); i++ {
			fill(s.Index(i), texts, times, n)
		}
		v.Set(s)
	default:
		panic("fill: a field of kind " + v.Kind().String() + " is new: write it in appendStoredInsurability and here")
	}
}

func TestStoredInsurability_JSONIsEncodingJSONs(t *testing.T) {
	brussels, err := time.LoadLocation("Europe/Brussels")
	require.NoError(t, err)
	texts := []string{"", "93051822361", "Lotte", `quote " back \ slash`, "<tag> & amp", "é€𝄞", "ctl \x01\t\n\r", "bad \xff utf8", "line\u2028sep", "standard"}
	times := []time.Time{{}, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 2, 10, 15, 30, 123456789, brussels),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999, time.FixedZone("", -(3*3600+30*60))), time.Now()}
	for start := 0; start < 12; start++ {
		var s stored[InsurabilityAnswer, InsurabilityRequest]
		n := start
		fill(reflect.ValueOf(&s).Elem(), texts, times, &n)
		want, err := json.Marshal(s)
		require.NoError(t, err)
		got, err := appendStoredInsurability(nil, s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	}
	var zero stored[InsurabilityAnswer, InsurabilityRequest] // nil slices are null
	want, err := json.Marshal(zero)
	require.NoError(t, err)
	got, err := appendStoredInsurability(nil, zero)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
	zero.Answer.Coverages, zero.Answer.MultipleIO = []Coverage{}, []string{}
	want, _ = json.Marshal(zero)
	got, _ = appendStoredInsurability(nil, zero)
	require.Equal(t, string(want), string(got), "empty slices are []")

	zero.AsOf = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err = json.Marshal(zero)
	require.Error(t, err)
	_, err = appendStoredInsurability(nil, zero)
	require.Error(t, err, "a year encoding/json refuses is refused")
}
