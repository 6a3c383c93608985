// Package cookbook is ehgate's guide for integrators, in the spirit of the business-continuity
// cookbook the eHealth platform gives its integrators. The chapters are the Markdown files
// beside this one; each is backed by a runnable Example of this package, which go test runs
// against platformtest, the local stand-in of the platform, and whose output it checks:
//
//   - 01-getting-started.md: credentials, environments, the first call (Example_gettingStarted,
//     Example_generalPractitionerWithPEM)
//   - 02-insurability.md: insurability with fallback (Example_insurabilityWithFallback)
//   - 03-etk.md: encryption token keys (Example_etk)
//   - 04-status-banner.md: watching the status page, showing a banner (Example_statusBanner)
//   - 05-writes.md: writes during an outage (Example_writesDuringAnOutage)
//   - 06-drills.md: drills and operator activation (Example_drill, Example_operatorActivation)
//   - 07-operations.md: logs, metrics, the store's keys (Example_operations)
//   - 08-from-java-connector.md: from the Java connector's properties to connector.Config
//     (Example_fromJavaConnectorProperties)
//   - 09-fleet.md: several instances on one PostgreSQL database (TestFleet_RunningAFleet,
//     a test since it needs the database)
//
// The package holds no code of its own: everything a vendor calls is in package connector.
package cookbook
