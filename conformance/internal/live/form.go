package live

import (
	"errors"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// ParseForm reads the first form of an HTML page the way a browser without
// JavaScript submits it: its action, and the fields that carry a value
// (hidden and pre-filled inputs, checked boxes). The suites fill in the
// rest and post it.
func ParseForm(body string) (action string, fields url.Values, err error) {
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return "", nil, err
	}
	fields = url.Values{}
	found := false
	var walk func(n *html.Node, inForm bool)
	walk = func(n *html.Node, inForm bool) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				if found {
					return
				}
				found, inForm = true, true
				action = attr(n, "action")
			case "input":
				if inForm {
					name, typ := attr(n, "name"), attr(n, "type")
					switch {
					case name == "":
					case typ == "checkbox":
						if hasAttr(n, "checked") {
							fields.Set(name, attr(n, "value"))
						}
					case attr(n, "value") != "":
						fields.Set(name, attr(n, "value"))
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inForm)
		}
	}
	walk(doc, false)
	if !found {
		return "", nil, errors.New("no form on the page")
	}
	return action, fields, nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}
