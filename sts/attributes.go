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

// Presets per profession: what the official configuration claims and asks to be certified.
// Each says its source. They are plain values: copy one and change it for another profile.
//
// PresetPharmacy is a community pharmacy: the pharmacy's NIHII number and its holder's SSIN
// come from ProviderConfig.NIHII and ProviderConfig.SSIN. The four claims and seven
// designators, in this order, are the pharmacy STS properties of eHealth's Recip-e
// integration module (sessionmanager.samlattribute.N / sessionmanager.samlattributedesignator.N),
// taktik/freehealth-connector compiled/RECIPE.1.8.4/properties/utils/PropertyHandlerTest.properties.
var PresetPharmacy = AttributeSet{
	Claimed: []ClaimedAttribute{
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:ehealth:1.0:certificateholder:person:ssin", From: FromSSIN},
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number", From: FromNIHII},
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:person:ssin", From: FromSSIN},
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder", From: FromSSIN},
	},
	Certified: []Designator{
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:ehealth:1.0:certificateholder:person:ssin"},
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number"},
		{Namespace: NamespaceCertified, Name: "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:recognisedpharmacy:boolean"},
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:person:ssin"},
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder"},
		{Namespace: NamespaceCertified, Name: "urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder:certified:nihii11"},
		{Namespace: NamespaceCertified, Name: "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:person:ssin:ehealth:1.0:pharmacy-holder:boolean"},
	},
}

// personClaims are the claims of a care provider authenticating with a personal certificate:
// the certificate holder's SSIN (ProviderConfig.SSIN), twice.
func personClaims() []ClaimedAttribute {
	return []ClaimedAttribute{
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:ehealth:1.0:certificateholder:person:ssin", From: FromSSIN},
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:person:ssin", From: FromSSIN},
	}
}

// personSet is a personal profession's set: the two identification designators, then the
// certified ones.
func personSet(certified ...string) AttributeSet {
	ds := []Designator{
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:ehealth:1.0:certificateholder:person:ssin"},
		{Namespace: NamespaceIdentification, Name: "urn:be:fgov:person:ssin"},
	}
	for _, n := range certified {
		ds = append(ds, Designator{Namespace: NamespaceCertified, Name: n})
	}
	return AttributeSet{Claimed: personClaims(), Certified: ds}
}

// organisationSet is an organisation's set (its NIHII from ProviderConfig.NIHII), kind being
// the platform's name of the organisation type ("medicalhouse", "guardpost", ...).
func organisationSet(kind string, certified ...Designator) AttributeSet {
	base := "urn:be:fgov:ehealth:1.0:" + kind + ":nihii-number"
	holder := "urn:be:fgov:ehealth:1.0:certificateholder:" + kind + ":nihii-number"
	return AttributeSet{
		Claimed: []ClaimedAttribute{
			{Namespace: NamespaceIdentification, Name: base, From: FromNIHII},
			{Namespace: NamespaceIdentification, Name: holder, From: FromNIHII},
		},
		Certified: append([]Designator{
			{Namespace: NamespaceIdentification, Name: base},
			{Namespace: NamespaceIdentification, Name: holder},
		}, certified...),
	}
}

// The other professions' sets are those of the freehealth connector's STS service, which
// builds them per "quality" (taktik/freehealth-connector
// src/main/kotlin/org/taktik/freehealth/middleware/service/impl/STSServiceImpl.kt, at commit
// bbd641624821f5adfd54e591e5404adeb934a443), in its order.
var (
	// PresetDoctor is a physician with a personal certificate (quality "doctor").
	PresetDoctor = personSet(
		"urn:be:fgov:person:ssin:doctor:boolean",
		"urn:be:fgov:person:ssin:ehealth:1.0:doctor:nihii11",
		"urn:be:fgov:person:ssin:ehealth:1.0:givenname",
		"urn:be:fgov:person:ssin:ehealth:1.0:surname",
		"urn:be:fgov:person:ssin:ehealth:1.0:fpsph:doctor:boolean")
	// PresetNurse is a nurse with a personal certificate (quality "nurse").
	PresetNurse = personSet(
		"urn:be:fgov:person:ssin:nurse:boolean",
		"urn:be:fgov:person:ssin:ehealth:1.0:nurse:nihii11",
		"urn:be:fgov:person:ssin:ehealth:1.0:nihii:nurse:nihii11",
		"urn:be:fgov:person:ssin:ehealth:1.0:givenname",
		"urn:be:fgov:person:ssin:ehealth:1.0:surname",
		"urn:be:fgov:person:ssin:ehealth:1.0:fpsph:nurse:boolean")
	// PresetDentist is a dentist (quality "dentist").
	PresetDentist = personSet(
		"urn:be:fgov:person:ssin:ehealth:1.0:fpsph:dentist:boolean",
		"urn:be:fgov:person:ssin:ehealth:1.0:nihii:dentist:nihii11",
		"urn:be:fgov:person:ssin:ehealth:1.0:professional:dentist:boolean")
	// PresetPhysiotherapist is a physiotherapist (quality "physiotherapist").
	PresetPhysiotherapist = personSet(
		"urn:be:fgov:person:ssin:ehealth:1.0:professional:physiotherapist:boolean",
		"urn:be:fgov:person:ssin:ehealth:1.0:nihii:physiotherapist:nihii11",
		"urn:be:fgov:person:ssin:ehealth:1.0:givenname",
		"urn:be:fgov:person:ssin:ehealth:1.0:surname",
		"urn:be:fgov:person:ssin:ehealth:1.0:fpsph:physiotherapist:boolean")
	// PresetMidwife is a midwife (quality "midwife").
	PresetMidwife = personSet(
		"urn:be:fgov:person:ssin:ehealth:1.0:professional:midwife:boolean",
		"urn:be:fgov:person:ssin:ehealth:1.0:nihii:midwife:nihii11",
		"urn:be:fgov:person:ssin:ehealth:1.0:givenname",
		"urn:be:fgov:person:ssin:ehealth:1.0:surname",
		"urn:be:fgov:person:ssin:ehealth:1.0:fpsph:midwife:boolean")
	// PresetMedicalHouse is a medical house with an organisation certificate (quality
	// "medicalhouse").
	PresetMedicalHouse = organisationSet("medicalhouse",
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:medicalhouse:nihii-number:recognisedmedicalhouse:nihii11"},
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:medicalhouse:nihii-number:recognisedmedicalhouse:boolean"},
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:certificateholder:recognisedorganization:boolean"})
	// PresetGuardPost is a guard post (quality "guardpost").
	PresetGuardPost = organisationSet("guardpost",
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:guardpost:nihii-number:recognisedguardpost:nihii11"},
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:guardpost:nihii-number:recognisedguardpost:boolean"},
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:certificateholder:recognisedorganization:boolean"})
	// PresetSortingCenter is a sorting centre (quality "sortingcenter").
	PresetSortingCenter = organisationSet("sortingcenter",
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:certificateholder:sortingcenter:nihii-number"},
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:sortingcenter:nihii-number:recognisedsortingcenter:nihii11"},
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:sortingcenter:nihii-number:recognisedsortingcenter:boolean"},
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:certificateholder:recognisedorganization:boolean"})
	// PresetOfficeDoctors is a group practice of doctors (quality "officedoctors").
	PresetOfficeDoctors = organisationSet("officedoctors",
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:certificateholder:officedoctors:nihii-number"},
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:officedoctors:nihii-number:recognisedofficedoctors:nihii11"},
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:officedoctors:nihii-number:recognisedofficedoctors:boolean"})
	// PresetGroupOfNurses is a group of nurses (quality "groupofnurses").
	PresetGroupOfNurses = organisationSet("groupofnurses",
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:certificateholder:groupofnurses:nihii-number"},
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:groupofnurses:nihii-number:recognisedgroupofnurses:nihii11"},
		Designator{NamespaceCertified, "urn:be:fgov:ehealth:1.0:certificateholder:groupofnurses:nihii-number:recognisedgroupofnurses:boolean"})

	// PresetGP is PresetDoctor (a general practitioner's set is the doctor's). Kept for
	// existing configurations.
	PresetGP = PresetDoctor
)

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
