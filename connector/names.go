package connector

import (
	"slices"
	"strconv"
)

// Services returns the short service-list names the connector serves itself (ServiceSTS,
// ServiceInsurability, ServiceGenericInsurability, ServiceETK, ServiceEHealthBox).
func Services() []string {
	return []string{ServiceSTS, ServiceInsurability, ServiceGenericInsurability, ServiceETK, ServiceEHealthBox}
}

// Status-feed components the connector knows, by the name_nl the feed gives them. The feed is
// undocumented (no official list of its components): these are the names the platform's
// stand-in (platformtest) serves; check them against the live feed (examples/statuswatch
// prints every component) and map others with Config.StatusComponents.
const (
	ComponentSTS                 = "eHealth STS"
	ComponentETK                 = "ETK Depot"
	ComponentInsurability        = "Insurability"
	ComponentGenericInsurability = "Generic Insurability"
	ComponentEHealthBox          = "eHealthBox"
)

// DefaultStatusComponents maps the known components to the services they cover (a new map
// for each call).
func DefaultStatusComponents() map[string][]string {
	return map[string][]string{
		ComponentSTS:                 {ServiceSTS},
		ComponentETK:                 {ServiceETK},
		ComponentInsurability:        {ServiceInsurability},
		ComponentGenericInsurability: {ServiceGenericInsurability},
		ComponentEHealthBox:          {ServiceEHealthBox},
	}
}

// knownService returns a *RequestError (ErrRequest) unless service is one of Services or a
// service of the service list in force: a typo must not put a phantom service in fallback.
func (c *Client) knownService(service string) error {
	if service == "" {
		return &RequestError{Field: "service", Reason: "required"}
	}
	if slices.Contains(Services(), service) {
		return nil
	}
	if l := c.loader.Current(); l != nil {
		if _, ok := l.Lookup(service); ok {
			return nil
		}
	}
	return &RequestError{Field: "service", Reason: "unknown service " + strconv.Quote(truncateText(service, 64))}
}
