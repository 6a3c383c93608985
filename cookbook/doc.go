// Package cookbook is ehgate's guide for integrators, in the spirit of the business-continuity
// cookbook the eHealth platform gives its integrators. The chapters are the Markdown files
// beside this one; each shows complete programs (package main) that run against platformtest,
// the local stand-in of the platform, started inside them:
//
//   - 01-getting-started.md: credentials, trust roots from PEM files, environments, the first call
//   - 02-insurability.md: insurability with fallback
//   - 03-etk.md: encryption token keys
//   - 04-status-banner.md: watching the status page, showing a banner
//   - 05-writes.md: writes during an outage
//   - 06-drills.md: drills and operator activation
//   - 07-operations.md: logs, metrics, the store's keys
//   - 08-from-java-connector.md: from the Java connector's properties to connector.Config
//   - 09-fleet.md: several instances on one PostgreSQL database
//
// The package holds no code of its own: everything a vendor calls is in package connector.
// Its test extracts every program from the chapters, builds them in a module of their own
// (with a replace directive to this repository), runs them and compares what they print
// with the chapter's text; chapter 9's runs when EHGATE_TEST_POSTGRES_URL is set.
package cookbook
