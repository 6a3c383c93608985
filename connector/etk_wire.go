package connector

import (
	"encoding/base64"
	"strings"

	"github.com/beevik/etree"
)

// The wire format of the ETK depot 1.0 (ehealth-etkdepot-schema-protocol-1_0.xsd): every
// element in the depot's namespace, except the answer's Status, which is the commons 1_0 core
// element (with unqualified Code and Message).

// buildETKRequest builds GetEtkRequest/SearchCriteria/Identifier for id.
func buildETKRequest(id Identifier) *etree.Element {
	root := etree.NewElement("etk:GetEtkRequest")
	root.CreateAttr("xmlns:etk", NSETKProtocol)
	sc := add(root, "etk:SearchCriteria", "")
	ident := add(sc, "etk:Identifier", "")
	add(ident, "etk:Type", id.Type)
	add(ident, "etk:Value", id.Value)
	if id.ApplicationID != "" {
		add(ident, "etk:ApplicationID", id.ApplicationID)
	}
	return root
}

// etkResponse is a parsed GetEtkResponse: exactly one of its fields is set.
type etkResponse struct {
	etk      []byte         // DER of the CMS structure
	matching [][]Identifier // MatchingEtk lists
}

// parseETKResponse reads a GetEtkResponse as its schema defines it. An Error is a
// *BusinessError; anything the schema does not allow, a Status other than 200 without Error
// or an answer with neither ETK nor MatchingEtk is a *ResponseError naming the element.
func parseETKResponse(el *etree.Element) (etkResponse, error) {
	const e = NSETKProtocol
	r := &answerReader{service: ServiceETK}
	var out etkResponse
	s := r.root(el, e, "GetEtkResponse")
	code, _ := readStatus(s, NSCommonsCore10)
	var business *BusinessError
	var etkText string
	hasETK := false
	if gsc := s.opt(e, "GivenSearchCriteria"); gsc != nil {
		gs := r.seq(gsc, s.path+"/GivenSearchCriteria")
		for _, ie := range gs.many(e, "Identifier", 1, 64) {
			readETKIdentifier(r, ie, gs.path+"/Identifier")
		}
		gs.end()
		switch {
		case s.peek(e, "MatchingEtk"):
			for i, m := range s.many(e, "MatchingEtk", 1, 1<<16) {
				ms := r.seq(m, s.path+"/MatchingEtk")
				var ids []Identifier
				for _, ie := range ms.many(e, "Identifier", 1, 64) {
					ids = append(ids, readETKIdentifier(r, ie, ms.path+"/Identifier"))
				}
				ms.end()
				if i < maxMatching {
					out.matching = append(out.matching, ids)
				}
			}
		case s.peek(e, "ETK"):
			hasETK = true
			etkText = s.text(e, "ETK")
		case s.peek(e, "Error"):
			for i, er := range s.many(e, "Error", 1, 1<<16) {
				es := r.seq(er, s.path+"/Error")
				c := es.text(e, "Code")
				m := es.text(e, "Message")
				es.end()
				if i == 0 {
					business = &BusinessError{Service: ServiceETK, Code: truncateText(c, 16), Message: truncateText(m, 256)}
				}
			}
		}
	}
	s.end()
	if r.failed() {
		return etkResponse{}, r.err
	}
	if business != nil {
		if business.Code == "" {
			business.Code = "unknown"
		}
		return etkResponse{}, business
	}
	if code != "200" {
		return etkResponse{}, &ResponseError{Service: ServiceETK, Element: "GetEtkResponse/Status/Code", Reason: "is " + truncateText(code, 16) + ", not 200, without Error"}
	}
	if hasETK {
		txt := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
				return -1
			}
			return r
		}, etkText)
		if base64.StdEncoding.DecodedLen(len(txt)) > maxETKBytes {
			return etkResponse{}, &ResponseError{Service: ServiceETK, Element: "GetEtkResponse/ETK", Reason: "too large"}
		}
		der, err := base64.StdEncoding.DecodeString(txt)
		if err != nil {
			return etkResponse{}, &ResponseError{Service: ServiceETK, Element: "GetEtkResponse/ETK", Reason: "not base64"}
		}
		out.etk = der
		return out, nil
	}
	if len(out.matching) == 0 {
		return etkResponse{}, &ResponseError{Service: ServiceETK, Element: "GetEtkResponse", Reason: "neither ETK, MatchingEtk nor Error"}
	}
	return out, nil
}

// readETKIdentifier reads an IdentifierType (Type, Value, ApplicationID).
func readETKIdentifier(r *answerReader, el *etree.Element, path string) Identifier {
	const e = NSETKProtocol
	s := r.seq(el, path)
	var id Identifier
	id.Type = s.text(e, "Type")
	id.Value = s.text(e, "Value")
	id.ApplicationID, _ = s.optText(e, "ApplicationID")
	s.end()
	return id
}
