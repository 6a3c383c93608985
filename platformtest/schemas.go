package platformtest

import (
	"bytes"
	"embed"
	"fmt"
	"sync"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/soap"
)

// xsdFS holds the platform's schemas (testdata/xsd/README.md names their
// source repositories, commits and paths).
//
//go:embed testdata/xsd
var xsdFS embed.FS

// Schema names one of the platform's message schemas platformtest knows.
type Schema string

// The schemas platformtest validates against. File returns each one's path
// below testdata/xsd (the relative layout of the source repositories is
// kept, so imports resolve; `xmllint --schema` accepts the same file).
const (
	SchemaInsurability          Schema = "insurability-v2"         // GetInsurabilityForPharmacistRequest/Response
	SchemaGenericInsurability   Schema = "genericinsurability-1.1" // GetInsurabilityRequest/Response (MyCareNet)
	SchemaGenericInsurability10 Schema = "genericinsurability-1.0" // GetInsurabilityRequest/Response (eHealth ESB)
	SchemaETK                   Schema = "etkdepot-1.0"            // GetEtkRequest/Response
	SchemaEHealthBox            Schema = "ehbox-publication-3.0"   // SendMessageRequest/Response
	SchemaSOAError              Schema = "errors-soa-1.1"          // SystemError, BusinessError (SOAP fault detail)
	SchemaServiceListV1         Schema = "servicelist-v1"          // ServiceList (bcp protocol v1)
	SchemaServiceListV2         Schema = "servicelist-v2"          // ServiceList (bcp protocol v2)
	SchemaSAMLProtocol          Schema = "saml-protocol-1.1"       // samlp:Request / samlp:Response
	SchemaWSSecurity            Schema = "wss-headers"             // wsse:Security
)

var schemaFiles = map[Schema]string{
	SchemaInsurability:          "freehealth-connector/compiled/RECIPE.1.9.1/wsdl/ehealth-insurability/XSD/insurabilityservices_protocol-2_0.xsd",
	SchemaGenericInsurability:   "freehealth-connector/src/main/resources/ehealth-mycarenet-genins/XSD/ehealth-genins-protocol-1_1.xsd",
	SchemaGenericInsurability10: "eHI/genIns-module/wsdl/eHealthESB/XSD/gen_ins_services_protocol-1_0.xsd",
	SchemaETK:                   "freehealth-connector/src/main/resources/ehealth-etee/XSD/ehealth-etkdepot-schema-protocol-1_0.xsd",
	SchemaEHealthBox:            "freehealth-connector/src/main/resources/ehealth-ehbox/XSD/ehealth-ehBox-publication-schema-protocol-3_0.xsd",
	SchemaSOAError:              "freehealth-connector/src/main/resources/ehealth-errors/XSD/ehealth-errors-schema-soa-1_1.xsd",
	SchemaServiceListV1:         "freehealth-connector/src/main/resources/ehealth-bcp/XSD/ehealth-bcp-protocol-1_0.xsd",
	SchemaServiceListV2:         "freehealth-connector/src/main/resources/ehealth-bcp/XSD/ehealth-bcp-protocol-2_0.xsd",
	SchemaSAMLProtocol:          "freehealth-connector/src/main/resources/external/XSD/oasis-sstc-saml-schema-protocol-1.1.xsd",
	SchemaWSSecurity:            "wrappers/wss-headers.xsd",
}

// Schemas lists every schema platformtest knows.
func Schemas() []Schema {
	return []Schema{SchemaInsurability, SchemaGenericInsurability, SchemaGenericInsurability10, SchemaETK,
		SchemaEHealthBox, SchemaSOAError, SchemaServiceListV1, SchemaServiceListV2, SchemaSAMLProtocol, SchemaWSSecurity}
}

// File returns the schema's path below platformtest/testdata/xsd, or ""
// for an unknown schema.
func (s Schema) File() string { return schemaFiles[s] }

var (
	schemaMu    sync.Mutex
	schemaCache = map[Schema]*xsdSet{}
)

// compiled returns the compiled schema, loading it on first use.
func (s Schema) compiled() (*xsdSet, error) {
	f, ok := schemaFiles[s]
	if !ok {
		return nil, fmt.Errorf("platformtest: unknown schema %q", string(s))
	}
	schemaMu.Lock()
	defer schemaMu.Unlock()
	if set, ok := schemaCache[s]; ok {
		return set, nil
	}
	set, err := loadXSD(xsdFS, "testdata/xsd/"+f)
	if err != nil {
		return nil, err
	}
	schemaCache[s] = set
	return set, nil
}

// ValidateElement checks el, as a document root, against schema s with
// platformtest's own validator (the checks the platform's schema validation
// makes: element order, namespaces, required and optional elements,
// cardinality, attributes, simple-type facets). A message that does not
// validate is a *SchemaError naming the element and the rule; the value is
// never quoted.
func ValidateElement(s Schema, el *etree.Element) error {
	set, err := s.compiled()
	if err != nil {
		return err
	}
	return set.validate(el)
}

// Validate parses doc (a whole XML document whose root is the message, for
// example the payload of a SOAP Body) within soap's default limits (size,
// depth, element count) and checks it against schema s as ValidateElement
// does.
func Validate(s Schema, doc []byte) error {
	d, err := soap.ParseDocument(bytes.NewReader(doc), soap.Limits{})
	if err != nil {
		return &SchemaError{Path: "/", Reason: "not a well-formed document within limits: " + err.Error()}
	}
	return ValidateElement(s, d.Root())
}
