package bcp

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// statusFeedExample is a feed shaped as docs/wire/statusfeed.md describes (made up for the tests,
// not captured from the real status page).
const statusFeedExample = "testdata/statusfeed-example.json"

func TestParseStatusFeed_Example(t *testing.T) {
	comps, err := ParseStatusFeed(readTestdata(t, statusFeedExample))
	require.NoError(t, err)
	require.Len(t, comps, 5)
	require.Equal(t, Component{
		ID: "12", NameNL: "MyCareNet - Verzekerbaarheid", NameFR: "MyCareNet - Assurabilité",
		GroupNL: "MyCareNet", ComponentNL: "Verzekerbaarheid", StatusName: "Operational",
		Status: ComponentOperational,
	}, comps[0])
	require.Equal(t, ComponentPartialOutage, comps[1].Status)
	require.Equal(t, "Vertraging bij het verwerken", comps[1].Description)
	require.Equal(t, "21", comps[2].ID, "string ids kept")
	require.Equal(t, ComponentDegradedPerformance, comps[2].Status)
	require.Equal(t, "", comps[2].Description, "null description")
	require.Equal(t, ComponentUnknown, comps[3].Status, "Under Maintenance is not an outage")
	require.Equal(t, "Under Maintenance", comps[3].StatusName)
	require.Equal(t, ComponentMajorOutage, comps[4].Status)
}

func TestParseStatusFeed_Shapes(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []Component
	}{
		{"bare array", `[{"id":1,"name_nl":"A","status_name":"Major Outage"}]`,
			[]Component{{ID: "1", NameNL: "A", StatusName: "Major Outage", Status: ComponentMajorOutage}}},
		{"data wrapper", ` {"meta":{"x":1},"data":[{"id":"a-1","name_fr":"B","status_name":"Operational"}]} `,
			[]Component{{ID: "a-1", NameFR: "B", StatusName: "Operational", Status: ComponentOperational}}},
		{"empty array", `[]`, []Component{}},
		{"name only", `[{"component_name_nl":"C","status_name":"degraded  performance"}]`,
			[]Component{{ComponentNL: "C", StatusName: "degraded  performance", Status: ComponentDegradedPerformance}}},
		{"unknown fields and statuses", `[{"id":2.5,"name_nl":"D","status_name":"Maintenance","extra":[1,2,{"y":null}]}]`,
			[]Component{{ID: "2.5", NameNL: "D", StatusName: "Maintenance", Status: ComponentUnknown}}},
		{"missing status", `[{"id":3}]`, []Component{{ID: "3", Status: ComponentUnknown}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStatusFeed([]byte(tc.body))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseStatusFeed_Rejects(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		index int
		field string
	}{
		{"empty", ``, -1, ""},
		{"space", "  \n", -1, ""},
		{"html error page", `<html>503</html>`, -1, ""},
		{"truncated", `[{"id":1,"name_nl":"A"`, -1, ""},
		{"object without data", `{"components":[]}`, -1, ""},
		{"data not an array", `{"data":{"id":1}}`, -1, ""},
		{"trailing garbage", `[] []`, -1, ""},
		{"component not an object", `[{"id":1,"name_nl":"A"},"B"]`, 1, "component"},
		{"id is an object", `[{"id":{"v":1},"name_nl":"A"}]`, 0, "id"},
		{"name is a number", `[{"id":1,"name_nl":5}]`, 0, "name_nl"},
		{"status is a list", `[{"id":1,"status_name":["Major Outage"]}]`, 0, "status_name"},
		{"neither id nor name", `[{"status_name":"Operational"}]`, 0, "id"},
		{"too deep", strings.Repeat("[", 100) + strings.Repeat("]", 100), -1, ""},
		{"too large", `[` + strings.Repeat(" ", MaxStatusFeedBytes) + `]`, -1, ""},
		{"long string", `[{"id":1,"description":"` + strings.Repeat("x", maxFeedStringLength+1) + `"}]`, 0, "description"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStatusFeed([]byte(tc.body))
			require.Error(t, err)
			require.Nil(t, got)
			require.ErrorIs(t, err, ErrInvalidFeed)
			var fe *FeedError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tc.index, fe.Index, "%v", err)
			require.Equal(t, tc.field, fe.Field, "%v", err)
		})
	}
	t.Run("too many components", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("[")
		for i := 0; i <= maxFeedComponents; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"id":%d}`, i)
		}
		b.WriteString("]")
		_, err := ParseStatusFeed([]byte(b.String()))
		require.ErrorIs(t, err, ErrInvalidFeed)
		require.Contains(t, err.Error(), "more than")
	})
	t.Run("message", func(t *testing.T) {
		_, err := ParseStatusFeed([]byte(`[{"id":1},{"id":true}]`))
		require.EqualError(t, err, "bcp: status feed: component 1: id: not a number or string")
	})
}

func TestComponentStatus_String(t *testing.T) {
	for s, want := range map[ComponentStatus]string{
		ComponentUnknown:             "Unknown",
		ComponentOperational:         "Operational",
		ComponentDegradedPerformance: "Degraded Performance",
		ComponentPartialOutage:       "Partial Outage",
		ComponentMajorOutage:         "Major Outage",
		ComponentStatus(9):           "ComponentStatus(9)",
	} {
		require.Equal(t, want, s.String())
		if s != ComponentStatus(9) {
			require.Equal(t, s, ParseComponentStatus(want), want)
		}
	}
	require.Equal(t, ComponentMajorOutage, ParseComponentStatus(" MAJOR outage "))
	require.Equal(t, ComponentUnknown, ParseComponentStatus("Outage"))
	require.Equal(t, ComponentUnknown, ParseComponentStatus(""))
}

func TestComponent_Name(t *testing.T) {
	require.Equal(t, "nl", Component{ID: "1", NameNL: "nl", NameFR: "fr", ComponentNL: "c"}.Name())
	require.Equal(t, "c", Component{ID: "1", NameFR: "fr", ComponentNL: "c"}.Name())
	require.Equal(t, "fr", Component{ID: "1", NameFR: "fr"}.Name())
	require.Equal(t, "1", Component{ID: "1"}.Name())
}

func FuzzParseStatusFeed(f *testing.F) {
	f.Add(readTestdata(f, statusFeedExample))
	f.Add([]byte(`[{"id":1,"name_nl":"A","status_name":"Major Outage"}]`))
	f.Add([]byte(`{"data":[{"id":"x","component_name_nl":"B","status_name":"Operational","description":null}]}`))
	f.Add([]byte(`[[[[{"id":1}]]]]`))
	f.Add([]byte(`{"data":"nope"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		comps, err := ParseStatusFeed(data)
		if err != nil {
			var fe *FeedError
			if comps != nil || !errorsAsFeed(err, &fe) {
				t.Fatalf("bad error %T %v (components %v)", err, err, comps)
			}
			return
		}
		if len(comps) > maxFeedComponents {
			t.Fatalf("%d components", len(comps))
		}
		for _, c := range comps {
			if c.ID == "" && c.Name() == "" {
				t.Fatal("component without id or name accepted")
			}
			if c.Status != ParseComponentStatus(c.StatusName) {
				t.Fatalf("status %v for %q", c.Status, c.StatusName)
			}
			if c.Status < ComponentUnknown || c.Status > ComponentMajorOutage {
				t.Fatalf("status out of range: %d", c.Status)
			}
		}
	})
}

func errorsAsFeed(err error, fe **FeedError) bool {
	e, ok := err.(*FeedError)
	if ok {
		*fe = e
	}
	return ok
}
