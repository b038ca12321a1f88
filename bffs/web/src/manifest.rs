//! The trusted-operations manifest (Apollo's persisted-query manifest format): written
//! from a folder of `.graphql` files, one operation each, and checked against the schema,
//! by `web-bff --print-manifest <dir>`; read by `trusted` mode at start-up.

use std::path::Path;

use async_graphql::parser::types::{DocumentOperations, OperationType};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use switchyard_core::config::Profile;

use crate::config::GraphqlConfig;
use crate::persisted::sha256_hex;

const FORMAT: &str = "apollo-persisted-query-manifest";

/// Apollo's persisted-query manifest.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always `apollo-persisted-query-manifest`.
    pub format: String,
    /// Always 1.
    pub version: u32,
    /// The operations, by name.
    pub operations: Vec<ManifestOperation>,
}

/// One operation of a [`Manifest`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestOperation {
    /// The SHA-256 of `body`, in lowercase hex.
    pub id: String,
    /// The operation's name.
    pub name: String,
    /// `query` or `subscription`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The document, exactly as clients send it.
    pub body: String,
}

impl Manifest {
    /// Reads the manifest at `path`, checking its format and that every id is its body's
    /// SHA-256; the error says what is wrong.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let manifest: Self = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a manifest: {e}", path.display()))?;
        if manifest.format != FORMAT || manifest.version != 1 {
            return Err(format!(
                "{}: expected format {FORMAT}, version 1",
                path.display()
            ));
        }
        if let Some(operation) = manifest
            .operations
            .iter()
            .find(|operation| sha256_hex(&operation.body) != operation.id)
        {
            return Err(format!(
                "{}: the id of operation {} is not the SHA-256 of its body",
                path.display(),
                operation.name
            ));
        }
        Ok(manifest)
    }

    /// The manifest of the `.graphql` files in `dir` (in file-name order), each holding one
    /// named operation that validates against the schema; the error names the file.
    pub async fn from_operations_dir(dir: &Path) -> Result<Self, String> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "graphql"))
            .collect();
        files.sort();
        let schema =
            crate::build_schema(&GraphqlConfig::default(), Profile::Production, None, None);
        let mut operations = Vec::with_capacity(files.len());
        for file in files {
            let body = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?
                .trim()
                .to_owned();
            let (name, kind, variables) =
                named_operation(&body).map_err(|why| format!("{}: {why}", file.display()))?;
            // Validation runs before any resolver; without request data the resolvers
            // fail at their fields, which is not a document error, and no variables are
            // given, which is not one either.
            let response = schema
                .execute_stream(async_graphql::Request::new(body.clone()))
                .next()
                .await;
            if let Some(response) = response
                && crate::http::is_request_error(&response)
            {
                let unset: Vec<String> = variables
                    .iter()
                    .map(|name| format!("Variable {name} is not defined."))
                    .collect();
                let errors: Vec<&str> = response
                    .errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .filter(|message| !unset.iter().any(|unset| unset == message))
                    .collect();
                if !errors.is_empty() {
                    return Err(format!("{}: {}", file.display(), errors.join("; ")));
                }
            }
            operations.push(ManifestOperation {
                id: sha256_hex(&body),
                name,
                kind: kind.to_owned(),
                body,
            });
        }
        Ok(Self {
            format: FORMAT.to_owned(),
            version: 1,
            operations,
        })
    }

    /// The manifest as checked in: pretty JSON ending with a newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a manifest serialises");
        text.push('\n');
        text
    }
}

/// The name, type and variable names of the one operation of `body`.
fn named_operation(body: &str) -> Result<(String, &'static str, Vec<String>), String> {
    let document = async_graphql::parser::parse_query(body).map_err(|e| e.to_string())?;
    let (name, operation) = match &document.operations {
        DocumentOperations::Single(_) => return Err("the operation needs a name".into()),
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            operations.iter().next().expect("one operation")
        }
        DocumentOperations::Multiple(_) => return Err("expected one operation per file".into()),
    };
    let kind = match operation.node.ty {
        OperationType::Query => "query",
        OperationType::Subscription => "subscription",
        OperationType::Mutation => "mutation",
    };
    let variables = operation
        .node
        .variable_definitions
        .iter()
        .map(|definition| definition.node.name.node.to_string())
        .collect();
    Ok((name.to_string(), kind, variables))
}
