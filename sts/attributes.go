package sts

import (
	"errors"
	"fmt"
)

// Attribute namespaces of the eHealth STS.
const (
	// NamespaceIdentification holds the attributes a requester claims about itself.
	NamespaceIdentification = "urn:be:fgov:identification-namespace"
	// NamespaceCertified holds the attributes the STS is asked to certify.
	NamespaceCertified = "urn:be:fgov:certified-namespace:ehealth"
)

// ValueSource says where a claimed attribute's value comes from.
type ValueSource int

const (
	// FromLiteral takes ClaimedAttribute.Value as it is.
	FromLiteral ValueSource = iota
	// FromSSIN takes ProviderConfig.SSIN (the care provider's national number).
	FromSSIN
	// FromNIHII takes ProviderConfig.NIHII (the care provider's or pharmacy's INAMI/RIZIV number).
	FromNIHII
)

// String returns "literal", "ssin" or "nihii".
func (s ValueSource) String() string {
	switch s {
	case FromLiteral:
		return "literal"
	case FromSSIN:
		return "ssin"
	case FromNIHII:
		return "nihii"
	}
	return fmt.Sprintf("ValueSource(%d)", int(s))
}

// ClaimedAttribute is an attribute the requester asserts in the request's inner assertion.
type ClaimedAttribute struct {
	Namespace string
	Name      string
	From      ValueSource
	Value     string // used when From is FromLiteral
}

// Designator names an attribute the STS is asked to certify (saml:AttributeDesignator).
type Designator struct {
	Namespace string
	Name      string
}

// AttributeSet is what a token request claims and what it asks the STS to certify. It is
// configuration: start from PresetPharmacy or PresetGP, or write the set the platform's
// documentation gives for another profession.
type AttributeSet struct {
	Claimed   []ClaimedAttribute
	Certified []Designator
}

// PresetPharmacy is the attribute set of a community pharmacy (the pharmacy's NIHII number and
// its holder's SSIN come from ProviderConfig.NIHII and ProviderConfig.SSIN).
var PresetPharmacy = AttributeSet{
	Claimed: []ClaimedAttribute{
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:ehealth:1.0:certificateholder:person:ssin", From: FromSSIN},
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number", From: FromNIHII},
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:person:ssin", From: FromSSIN},
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder", From: FromSSIN},
	},
	Certified: []Designator{
		{Namespace: NamespaceCertified, Name: "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:recognisedpharmacy:boolean"},
		{Namespace: NamespaceCertified, Name: "urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder:certified:nihii11"},
	},
}

// PresetGP is the attribute set of a general practitioner authenticating with a personal
// certificate (the doctor's SSIN comes from ProviderConfig.SSIN; the STS certifies the NIHII).
var PresetGP = AttributeSet{
	Claimed: []ClaimedAttribute{
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:ehealth:1.0:certificateholder:person:ssin", From: FromSSIN},
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:person:ssin", From: FromSSIN},
	},
	Certified: []Designator{
		{Namespace: NamespaceCertified, Name: "urn:be:fgov:person:ssin:ehealth:1.0:doctor:nihii11"},
		{Namespace: NamespaceCertified, Name: "urn:be:fgov:person:ssin:doctor:boolean"},
	},
}

// resolvedAttribute is a claimed attribute with its value.
type resolvedAttribute struct {
	Namespace, Name, Value string
}

// errAttributes is wrapped by every problem of an AttributeSet.
var errAttributes = errors.New("sts: attribute set")

// resolve returns the claimed attributes with their values, checking the set.
func (s AttributeSet) resolve(ssin, nihii string) ([]resolvedAttribute, error) {
	if len(s.Certified) == 0 {
		return nil, fmt.Errorf("%w: no attribute to certify", errAttributes)
	}
	for i, d := range s.Certified {
		if d.Namespace == "" || d.Name == "" {
			return nil, fmt.Errorf("%w: Certified[%d] needs Namespace and Name", errAttributes, i)
		}
	}
	out := make([]resolvedAttribute, 0, len(s.Claimed))
	for i, a := range s.Claimed {
		if a.Namespace == "" || a.Name == "" {
			return nil, fmt.Errorf("%w: Claimed[%d] needs Namespace and Name", errAttributes, i)
		}
		v := a.Value
		switch a.From {
		case FromLiteral:
		case FromSSIN:
			v = ssin
		case FromNIHII:
			v = nihii
		default:
			return nil, fmt.Errorf("%w: Claimed[%d] (%s) has unknown source %v", errAttributes, i, a.Name, a.From)
		}
		if v == "" {
			// Name the field, not the value: it may be an SSIN.
			return nil, fmt.Errorf("%w: Claimed[%d] (%s) takes its value from %v, which is empty", errAttributes, i, a.Name, a.From)
		}
		out = append(out, resolvedAttribute{a.Namespace, a.Name, v})
	}
	return out, nil
}
