package docs_test

import (
	"crypto/sha256"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/sts"
)

// The page on going to acceptance, then production, repeats facts the code holds; it must
// say what the code does.
func TestAcceptanceToProduction_AgreesWithTheCode(t *testing.T) {
	data, err := os.ReadFile("acceptance-to-production.md")
	require.NoError(t, err)
	page := string(data)

	for _, url := range []string{
		connector.AcceptanceServiceListURL, connector.ProductionServiceListURL,
		connector.AcceptanceStatusFeedURL, connector.ProductionStatusFeedURL,
	} {
		require.Contains(t, page, "`"+url+"`")
	}
	acc := connector.DefaultConfigFor(connector.Acceptance)
	require.Equal(t, connector.AcceptanceStatusFeedURL, acc.StatusFeedURL, "the page says DefaultConfigFor sets the feed")

	// The signers the page names are those the code pins.
	require.Contains(t, connector.DefaultServiceListSubject, `CBE=0809394427\, SERVICELIST`)
	require.Contains(t, page, `"CBE=0809394427, SERVICELIST"`)
	require.Contains(t, sts.SubjectSTSAcceptance, `CN="CBE=0809394427, IAMACC"`)
	require.Contains(t, page, `"CBE=0809394427, IAMACC"`)
	require.Contains(t, sts.SubjectSTSProduction, `CN="CBE=0809394427, IAM"`)
	require.Contains(t, page, `"CBE=0809394427, IAM" (**inferred**)`)

	// The fingerprint the page gives is the file's.
	ca, err := os.ReadFile(filepath.Join("..", "connector", "testdata", "cafiles", "acceptance-servicelist-issuing-ca.pem"))
	require.NoError(t, err)
	block, _ := pem.Decode(ca)
	require.NotNil(t, block)
	sum := sha256.Sum256(block.Bytes)
	hex := make([]string, len(sum))
	for i, b := range sum {
		hex[i] = fmt.Sprintf("%02X", b)
	}
	require.Contains(t, page, strings.Join(hex, ":"))

	// Every acceptance endpoint the page quotes is in the acceptance list it cites.
	list, err := os.ReadFile(filepath.Join("..", "bcp", "testdata", "servicelist-acceptance-2022-12.xml"))
	require.NoError(t, err)
	endpoints := regexp.MustCompile("`(https://(?:services-acpt\\.ehealth\\.fgov\\.be|pilot\\.mycarenet\\.be:9443)/[^`]+)`").FindAllStringSubmatch(page, -1)
	require.NotEmpty(t, endpoints)
	for _, m := range endpoints {
		require.True(t, strings.Contains(string(list), m[1]), "%s is not in the acceptance list of 2022", m[1])
	}

	// Every file of the repository the page names exists.
	for _, m := range regexp.MustCompile("`((?:connector|bcp|x500|sts)/[\\w./-]+\\.(?:pem|xml|go))`").FindAllStringSubmatch(page, -1) {
		_, err := os.Stat(filepath.Join("..", m[1]))
		require.NoError(t, err, m[1])
	}
}
