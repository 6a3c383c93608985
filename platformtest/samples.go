package platformtest

import (
	"embed"
	"encoding/base64"
	"time"

	"github.com/beevik/etree"
)

// sampleFS holds one schema-valid request per business service, written
// from the schemas (checked with xmllint by this package's tests).
//
//go:embed testdata/messages/*.xml
var sampleFS embed.FS

func sample(name string) *etree.Element {
	doc := etree.NewDocument()
	b, err := sampleFS.ReadFile("testdata/messages/" + name)
	if err != nil {
		panic(err) // embedded
	}
	if err := doc.ReadFromBytes(b); err != nil {
		panic(err) // embedded and tested
	}
	return doc.Root().Copy()
}

// InsurabilityRequest returns a GetInsurabilityForPharmacistRequest that
// validates against the Insurability v2 schema, asking for the patient ssin
// on day ("" = no Ssin: add RegNrWithMut and Mutuality to CareReceiver).
// The origin is a pharmacy (CareProvider with Nihii Quality/Value,
// PhysicalPerson, Organization); RecordCommonInput/Reference is
// 12345678901234. For tests that need a request the platform accepts.
func InsurabilityRequest(ssin string, day time.Time) *etree.Element {
	r := sample("insurability-request.xml")
	r.FindElement(".//InsurabilityRequest/Date").SetText(day.Format(dateLayout))
	s := r.FindElement(".//InsurabilityRequest/CareReceiver/Ssin")
	if ssin == "" {
		s.Parent().RemoveChild(s)
	} else {
		s.SetText(ssin)
	}
	return r
}

// GenericInsurabilityRequest returns a GetInsurabilityRequest that
// validates against the GenericInsurability 1.1 (and 1.0) schema, asking
// for inss on day ("" = no Inss), request type information, ambulatory
// care.
func GenericInsurabilityRequest(inss string, day time.Time) *etree.Element {
	r := sample("genins-request.xml")
	r.FindElement(".//Period/PeriodStart").SetText(day.Format(dateLayout))
	r.FindElement(".//Period/PeriodEnd").SetText(day.Format(dateLayout))
	s := r.FindElement(".//Request/CareReceiverId/Inss")
	if inss == "" {
		s.Parent().RemoveChild(s)
	} else {
		s.SetText(inss)
	}
	return r
}

// EHealthBoxRequest returns a SendMessageRequest that validates against the
// eHealthBox publication 3.0 schema (if publicationID has 1 to 13
// characters): one document carrying content as EncryptableTextContent, to
// the recipient (recipientType, recipientID) of quality PHARMACY.
func EHealthBoxRequest(publicationID, recipientType, recipientID string, content []byte) *etree.Element {
	r := sample("ehbox-request.xml")
	r.CreateAttr("PublicationId", publicationID)
	dc := r.SelectElement("DestinationContext")
	dc.SelectElement("Id").SetText(recipientID)
	dc.SelectElement("Type").SetText(recipientType)
	r.FindElement(".//Document/EncryptableTextContent").SetText(base64.StdEncoding.EncodeToString(content))
	return r
}

// ETKRequest returns a GetEtkRequest that validates against the ETK depot
// 1.0 schema, for (typ, value) and, if not "", the application ID.
func ETKRequest(typ, value, appID string) *etree.Element {
	r := sample("etk-request.xml")
	id := r.FindElement(".//Identifier")
	id.SelectElement("Type").SetText(typ)
	id.SelectElement("Value").SetText(value)
	if appID == "" {
		id.RemoveChild(id.SelectElement("ApplicationID"))
	} else {
		id.SelectElement("ApplicationID").SetText(appID)
	}
	return r
}
