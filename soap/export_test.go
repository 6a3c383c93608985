package soap

// CanonicalNodes reads the count of canonicalised nodes (the work of
// signature checks) for the cost tests of package soap_test.
func CanonicalNodes() int64 { return canonicalNodes.Load() }
