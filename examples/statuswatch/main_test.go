package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStatuswatch_StandInIncidentIsPrinted(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-duration=5s", "-interval=100ms"}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	s := out.String()
	require.Contains(t, s, "status page: 5 components")
	require.Contains(t, s, "0 in BCP mode")
	require.Contains(t, s, "status page: Insurability: Operational → Major Outage")
	require.Contains(t, s, "1 in BCP mode")
	require.Regexp(t, `insurability:v2 https://127\.0\.0\.1:\d+/Insurability/v2: ACTIVE → INACTIVE`, s)
	require.Regexp(t, `insurability:v2 https://127\.0\.0\.1:\d+/Insurability/v2: INACTIVE → ACTIVE`, s)
	require.Contains(t, s, "status page: Insurability: Major Outage → Operational")
	require.Regexp(t, `insurability:v2 https://127\.0\.0\.1:\d+/ehealth/bcp/insurability: INACTIVE → ACTIVE`, s, "the BCP endpoint is activated by a new list")
	require.Contains(t, s, "stopped: 2 status changes, 4 endpoint changes seen")
}

func TestStatuswatch_FlagsAreChecked(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run(context.Background(), []string{"-list", "https://example.invalid/servicelist"}, &out, &errOut))
	require.Contains(t, errOut.String(), "-list-ca is required")
	errOut.Reset()
	require.Equal(t, 2, run(context.Background(), []string{"-feed", "http://plain.invalid/feed"}, &out, &errOut))
	require.Contains(t, errOut.String(), "status feed")
	errOut.Reset()
	require.Equal(t, 2, run(context.Background(), []string{"-list", "https://x.invalid/l", "-list-ca", "/nonexistent.pem"}, &out, &errOut))
	require.Contains(t, errOut.String(), "-list-ca")
}
