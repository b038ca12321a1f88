//! Checks responses against a checked-in OpenAPI 3.1 document (whose schemas are JSON
//! Schema 2020-12): the operation and status must be documented, the content type must be
//! one the document lists for that status, and the body must validate, formats included.
//! A 304 must have an empty body.

use serde_json::{Value, json};

use crate::TestResponse;

/// An OpenAPI document to hold responses against.
pub struct OpenApiContract {
    /// The document, as JSON.
    pub document: Value,
}

impl OpenApiContract {
    /// The document in `yaml` (`name` says which, in the panic if it does not parse).
    pub fn from_yaml(name: &str, yaml: &str) -> Self {
        let document = serde_norway::from_str(yaml)
            .unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"));
        Self { document }
    }

    /// The path template in the document that `path` (without query) instantiates.
    fn template_for(&self, path: &str) -> Option<&str> {
        let paths = self.document["paths"].as_object()?;
        let segments: Vec<&str> = path.split('/').collect();
        // Literal templates win over parameterised ones.
        let mut best: Option<(&str, usize)> = None;
        for template in paths.keys() {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let mut literal = 0;
            let matches = parts.iter().zip(&segments).all(|(part, segment)| {
                if part.starts_with('{') && part.ends_with('}') {
                    !segment.is_empty()
                } else {
                    literal += 1;
                    part == segment
                }
            });
            if matches && best.is_none_or(|(_, score)| literal > score) {
                best = Some((template.as_str(), literal));
            }
        }
        best.map(|(template, _)| template)
    }

    /// Follows a local `$ref` (`#/components/...`) if `value` is one.
    pub fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.trim_start_matches('#');
                self.document
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {reference}"))
            }
            None => value,
        }
    }

    /// Panics unless every `$ref` in the document resolves.
    pub fn assert_references_resolve(&self) {
        fn walk(contract: &OpenApiContract, value: &Value) {
            match value {
                Value::Object(map) => {
                    if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                        contract.resolve(&json!({ "$ref": reference }));
                    }
                    map.values().for_each(|v| walk(contract, v));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(contract, v)),
                _ => {}
            }
        }
        walk(self, &self.document);
    }

    /// Panics unless `response` to `method uri` is what the document promises.
    pub fn assert_conforms(&self, method: &str, uri: &str, response: &TestResponse) {
        let path = uri.split('?').next().unwrap_or(uri);
        let template = self
            .template_for(path)
            .unwrap_or_else(|| panic!("{path} is not in the OpenAPI document"));
        let operation = &self.document["paths"][template][method];
        assert!(
            operation.is_object(),
            "{method} {template} is not in the OpenAPI document"
        );
        let status = response.status.as_str();
        let documented = operation["responses"]
            .get(status)
            .map(|r| self.resolve(r))
            .unwrap_or_else(|| {
                panic!(
                    "{method} {template} answered {status}, which the document does not list: {}",
                    String::from_utf8_lossy(&response.body)
                )
            });
        if response.status == http::StatusCode::NOT_MODIFIED {
            assert!(response.body.is_empty(), "a 304 must have an empty body");
            return;
        }
        let media_type = response
            .header("content-type")
            .map(|ct| ct.split(';').next().unwrap_or(ct).trim().to_owned())
            .unwrap_or_default();
        let content = &documented["content"];
        if content.is_null() && response.body.is_empty() {
            return;
        }
        let schema = content[&media_type].get("schema").unwrap_or_else(|| {
            panic!("{method} {template} {status}: content type {media_type:?} is not documented")
        });
        let instance = if media_type.ends_with("json") {
            serde_json::from_slice::<Value>(&response.body)
                .unwrap_or_else(|e| panic!("{method} {template} {status}: body is not JSON ({e})"))
        } else {
            Value::String(String::from_utf8_lossy(&response.body).into_owned())
        };
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.document["components"],
            "allOf": [schema],
        });
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{template} {status}: schema does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {uri} {status} does not match the OpenAPI document:\n  {}\nbody: {instance}",
            errors.join("\n  ")
        );
    }
}
