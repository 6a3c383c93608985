package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPharmacy_StandInLiveThenLocalStore(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-outage"}, strings.NewReader(""), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	before, after, ok := strings.Cut(out.String(), "every site of the stand-in goes down")
	require.True(t, ok, out.String())

	require.Equal(t, 3, strings.Count(before, "live from https://127.0.0.1"), before)
	require.Contains(t, before, "the insurer says: code 01")
	require.Regexp(t, `insurability:v2\s+normal`, before)

	require.Equal(t, 3, strings.Count(after, "LOCAL STORE, answer of"), after)
	require.Equal(t, 3, strings.Count(after, "[EMERGENCY MODE]"))
	require.Contains(t, after, "NO ANSWER")
	require.Regexp(t, `insurability:v2\s+fallback`, after)
	require.NotRegexp(t, `\d{11}`, out.String(), "SSINs are masked")
}

func TestPharmacy_InteractiveReadsStdin(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-i"}, strings.NewReader("12345678901\n\n"), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	require.Contains(t, out.String(), "patient …8901  not a valid SSIN")
}

func TestPharmacy_RealEnvironmentNamesTheMissingFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run(context.Background(), []string{"-env", "acceptance"}, nil, &out, &errOut))
	require.Contains(t, errOut.String(), "-list-ca is required")

	errOut.Reset()
	require.Equal(t, 2, run(context.Background(), []string{"-env", "staging"}, nil, &out, &errOut))
	require.Contains(t, errOut.String(), `-env "staging"`)

	errOut.Reset()
	dir := t.TempDir()
	pem := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(pem, []byte("not a certificate"), 0o600))
	args := []string{"-env", "acceptance", "-list-ca", pem, "-sts-ca", pem, "-p12", "x.p12", "-nihii", "12345678",
		"-holder", "85073003328", "-licence-user", "u", "-store", dir, "-key-file", pem}
	require.Equal(t, 2, run(context.Background(), args, nil, &out, &errOut))
	require.Contains(t, errOut.String(), "-list-ca: ")
	require.Contains(t, errOut.String(), ": no PEM block")

	errOut.Reset()
	require.Equal(t, 2, run(context.Background(), []string{"-env", "acceptance", "-outage"}, nil, &out, &errOut))
	require.Contains(t, errOut.String(), "only with the local stand-in")
}
