// The identifier an XML document gives itself, for ingress deduplication: the string value of
// its template's "$document_id" XPath (template.h). Core: no I/O.
#pragma once

#include <string>

#include "common/result.h"
#include "mapping/template.h"
#include "xml/document.h"

namespace adapter::mapping {

// Longest identifier kept; a longer value is an error (it would not be a report number).
inline constexpr std::size_t kMaxDocumentIdBytes = 200;

// The identifier, whitespace-trimmed; empty when the template declares no $document_id. An
// error (Errc::not_xml) when the XPath fails or the document lacks the identifier it declares:
// a report without its number cannot be told apart from its corrections.
Result<std::string> document_identifier(const Template& tmpl, const xml::Document& document);

}  // namespace adapter::mapping
