package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/console"
	"github.com/ehgate/ehgate/internal/clienttest"
	"github.com/ehgate/ehgate/platformtest"
)

// Mount the console on an admin server under /ehgate/; here the vendor's single sign-on is a
// header set by its proxy. The JSON endpoint gives what the page shows.
func ExampleNew() {
	p, _ := platformtest.Start(platformtest.Config{Patients: 20, Seed: 42})
	defer p.Close()
	id, _ := p.NewIdentity(platformtest.Pharmacy, "Apotheek Centrum")
	dir, _ := os.MkdirTemp("", "ehgate-example")
	defer os.RemoveAll(dir)
	cfg, _ := clienttest.NewConfig(p, id, dir) // a connector.Config for the stand-in
	c, err := connector.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	h, err := console.New(c, console.Config{
		Authorize: func(r *http.Request) (string, bool) {
			user := r.Header.Get("X-Forwarded-User") // set by the vendor's authenticating proxy
			return user, user == "alice"
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	admin := http.NewServeMux()
	admin.Handle("/ehgate/", http.StripPrefix("/ehgate", h))
	srv := httptest.NewServer(admin)
	defer srv.Close()

	_ = c.ActivateFallback(connector.ServiceInsurability, "planned maintenance")
	resp, err := http.Get(srv.URL + "/ehgate/status.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var v console.View
	_ = json.NewDecoder(resp.Body).Decode(&v)
	for _, s := range v.Services {
		if s.Name == connector.ServiceInsurability {
			fmt.Println(s.Name, s.Mode, "—", s.Cause)
		}
	}
	// Output:
	// insurability:v2 fallback — operator: planned maintenance
}
