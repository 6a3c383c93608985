package cookbook_test

import (
	"bufio"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ehgate/ehgate/connector"
)

// configFromJavaProperties is the recipe of chapter 8: it reads the technical connector's
// properties a vendor already has and fills the matching connector.Config fields. It returns
// the keys it did not use, each with the reason, so nothing is dropped silently. Passwords,
// trust roots and the store's key do not come from the properties: the vendor adds them.
func configFromJavaProperties(text string) (connector.Config, map[string]string, error) {
	props, err := parseProperties(text)
	if err != nil {
		return connector.Config{}, nil, err
	}
	cfg := connector.DefaultConfig()
	skipped := map[string]string{}
	millis := func(key, v string) (time.Duration, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%s: %q is not a positive number of milliseconds", key, v)
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	var keystoreDir, keystore string
	for key, v := range props {
		switch {
		case key == "environment":
			switch v {
			case "prd":
				cfg.Environment = connector.Production
			case "acc":
				cfg.Environment = connector.Acceptance
			default:
				return cfg, nil, fmt.Errorf("environment: %q has no service list ehgate knows (give Config.ServiceListURL)", v)
			}
		case strings.HasSuffix(key, ".bcp.status.endpoint"):
			cfg.ServiceListURL = v
		case strings.HasSuffix(key, ".bcp.polling.interval.minutes"):
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return cfg, nil, fmt.Errorf("%s: %q is not a positive number of minutes", key, v)
			}
			cfg.ServiceListPoll = time.Duration(n) * time.Minute
		case strings.HasSuffix(key, ".bcp.polling.activated"):
			skipped[key] = "ehgate always polls the service list"
		case key == "connector.soaphandler.connection.connection.timeout":
			if cfg.Timeouts.Connect, err = millis(key, v); err != nil {
				return cfg, nil, err
			}
		case key == "connector.soaphandler.connection.request.timeout":
			if cfg.Timeouts.Attempt, err = millis(key, v); err != nil {
				return cfg, nil, err
			}
		case key == "KEYSTORE_DIR":
			keystoreDir = v
		case key == "sessionmanager.identification.keystore":
			keystore = v
		case key == "sessionmanager.holderofkey.keystore", key == "sessionmanager.encryption.keystore":
			if v != props["sessionmanager.identification.keystore"] {
				skipped[key] = "a separate keystore: load it with sts.LoadPKCS12 into Credentials.HolderOfKey"
			}
		case key == "sessionmanager.validity.token":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return cfg, nil, fmt.Errorf("%s: %q is not a positive number of hours", key, v)
			}
			cfg.TokenLifetime = time.Duration(n) * time.Hour
		case key == "sessionmanager.activate.autorenew":
			skipped[key] = "ehgate always renews the token before it expires"
		case strings.HasPrefix(key, "sessionmanager.samlattribute"):
			skipped[key] = "the attributes come from Identity.Preset (or Identity.Attributes)"
		case key == "user.nihii":
			cfg.Identity.NIHII = v
		case key == "user.inss":
			cfg.Identity.SSIN = v
		case key == "mycarenet.licence.username":
			cfg.Package.Username = v
		case key == "mycarenet.licence.password":
			cfg.Package.Password = v
		case key == "ehbox.application.name":
			skipped[key] = "eHealthBox messages carry Package.Name (its first 25 characters) as ApplicationName"
		case strings.HasPrefix(key, "endpoint."):
			skipped[key] = "endpoints come from the signed service list"
		default:
			skipped[key] = "no equivalent"
		}
	}
	if keystore != "" {
		cfg.Credentials.PKCS12File = filepath.Join(keystoreDir, keystore)
	}
	return cfg, skipped, nil
}

// parseProperties reads key=value lines (the subset of java.util.Properties vendors use:
// comments, blank lines, '=' or ':' separators).
func parseProperties(text string) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("properties line %d: no key=value", n)
		}
		out[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	return out, sc.Err()
}

// Chapter 8: a vendor's existing technical-connector properties become a connector.Config;
// the vendor adds what properties never held (passwords, roots, the store).
func Example_fromJavaConnectorProperties() {
	const properties = `
# be.ehealth.technicalconnector.properties of a pharmacy
environment=acc
be.fgov.ehealth.technicalconnector.bootstrap.bcp.polling.interval.minutes=1
be.fgov.ehealth.technicalconnector.bootstrap.bcp.polling.activated=true
connector.soaphandler.connection.connection.timeout=2000
connector.soaphandler.connection.request.timeout=5000
KEYSTORE_DIR=/etc/pharmacy/keystores
sessionmanager.identification.keystore=pharmacy.p12
sessionmanager.holderofkey.keystore=pharmacy.p12
sessionmanager.validity.token=12
sessionmanager.activate.autorenew=true
user.nihii=12345678
user.inss=85073003328
mycarenet.licence.username=vendor
mycarenet.licence.password=licence
endpoint.etk=$uddi{uddi:ehealth-fgov-be:business:etkdepot:v1}
endpoint.ehbox.publication.v3=$uddi{uddi:ehealth-fgov-be:business:ehboxpublication:v3}
ehbox.application.name=PharmaSoft
`
	cfg, skipped, err := configFromJavaProperties(properties)
	must(err)
	fmt.Println("environment:", cfg.Environment, "list poll:", cfg.ServiceListPoll)
	fmt.Println("timeouts:", cfg.Timeouts.Connect, cfg.Timeouts.Attempt, "token lifetime:", cfg.TokenLifetime)
	fmt.Println("keystore:", cfg.Credentials.PKCS12File, "NIHII:", cfg.Identity.NIHII)
	keys := make([]string, 0, len(skipped))
	for k := range skipped {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("not used: %s (%s)\n", k, skipped[k])
	}

	// What properties never held; Validate names the first missing field.
	var bad *connector.ConfigError
	fmt.Println("missing:", errors.As(cfg.Validate(), &bad), bad.Field)

	// Output:
	// environment: acceptance list poll: 1m0s
	// timeouts: 2s 5s token lifetime: 12h0m0s
	// keystore: /etc/pharmacy/keystores/pharmacy.p12 NIHII: 12345678
	// not used: be.fgov.ehealth.technicalconnector.bootstrap.bcp.polling.activated (ehgate always polls the service list)
	// not used: ehbox.application.name (eHealthBox messages carry Package.Name (its first 25 characters) as ApplicationName)
	// not used: endpoint.ehbox.publication.v3 (endpoints come from the signed service list)
	// not used: endpoint.etk (endpoints come from the signed service list)
	// not used: sessionmanager.activate.autorenew (ehgate always renews the token before it expires)
	// missing: true ServiceListRoots
}
