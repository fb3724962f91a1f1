//! JSON-RPC request handling as bitcoind does it: JSON-RPC 1.0-style objects (and 2.0 ones) or a batch array,
//! error objects with bitcoind's codes, and bitcoind's HTTP statuses for errors of single 1.0 requests.

use serde_json::{json, Map, Value};

/// bitcoind's `RPC_PARSE_ERROR`.
pub const PARSE_ERROR: i64 = -32700;
/// bitcoind's `RPC_INVALID_REQUEST`.
pub const INVALID_REQUEST: i64 = -32600;
/// bitcoind's `RPC_METHOD_NOT_FOUND`.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// bitcoind's `RPC_MISC_ERROR`.
pub const MISC_ERROR: i64 = -1;
/// bitcoind's `RPC_INVALID_ADDRESS_OR_KEY` (used for "Block not found").
pub const INVALID_ADDRESS_OR_KEY: i64 = -5;
/// bitcoind's `RPC_INVALID_PARAMETER`.
pub const INVALID_PARAMETER: i64 = -8;

/// A JSON-RPC error: bitcoind code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcFault {
    /// bitcoind error code.
    pub code: i64,
    /// Human-readable message.
    pub message: String,
}

impl RpcFault {
    /// A fault with this code and message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `-8` invalid parameter.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMETER, message)
    }

    /// `-1` miscellaneous error.
    pub fn misc(message: impl Into<String>) -> Self {
        Self::new(MISC_ERROR, message)
    }

    fn to_json(&self) -> Value {
        json!({ "code": self.code, "message": self.message })
    }
}

/// Something that executes one method call.
pub trait MethodDispatcher {
    /// Runs `method` with positional `params` (named params are mapped to positions before this is called).
    fn call(&self, method: &str, params: &[Value]) -> Result<Value, RpcFault>;
    /// The names of `method`'s parameters in order, or `None` when the method does not exist.
    fn param_names(&self, method: &str) -> Option<&'static [&'static str]>;
}

/// The HTTP reply to one request body: status code and JSON body (`None` for 204 No Content).
#[derive(Clone, Debug, PartialEq)]
pub struct HttpReply {
    /// HTTP status code.
    pub status: u16,
    /// JSON body, if any.
    pub body: Option<Value>,
}

/// Handles one HTTP request body (already authenticated).
pub fn handle_body(dispatcher: &dyn MethodDispatcher, body: &[u8]) -> HttpReply {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            return HttpReply {
                status: 500,
                body: Some(error_reply(
                    &RpcFault::new(PARSE_ERROR, "Parse error"),
                    Value::Null,
                    false,
                )),
            }
        }
    };
    match request {
        Value::Array(items) => {
            let replies: Vec<Value> = items
                .iter()
                .filter_map(|item| handle_single(dispatcher, item).into_batch_entry())
                .collect();
            HttpReply {
                status: 200,
                body: Some(Value::Array(replies)),
            }
        }
        single => handle_single(dispatcher, &single).into_http(),
    }
}

/// The outcome of one request object.
struct SingleOutcome {
    id: Value,
    jsonrpc2: bool,
    notification: bool,
    result: Result<Value, RpcFault>,
}

impl SingleOutcome {
    fn reply(&self) -> Value {
        match &self.result {
            Ok(result) => {
                if self.jsonrpc2 {
                    json!({ "jsonrpc": "2.0", "result": result, "id": self.id })
                } else {
                    json!({ "result": result, "error": null, "id": self.id })
                }
            }
            Err(fault) => error_reply(fault, self.id.clone(), self.jsonrpc2),
        }
    }

    fn into_batch_entry(self) -> Option<Value> {
        (!self.notification).then(|| self.reply())
    }

    fn into_http(self) -> HttpReply {
        if self.notification {
            return HttpReply {
                status: 204,
                body: None,
            };
        }
        // JSON-RPC 2.0 replies always travel with 200; legacy requests get bitcoind's statuses.
        let status = match (&self.result, self.jsonrpc2) {
            (Ok(_), _) | (Err(_), true) => 200,
            (Err(fault), false) => match fault.code {
                INVALID_REQUEST => 400,
                METHOD_NOT_FOUND => 404,
                _ => 500,
            },
        };
        HttpReply {
            status,
            body: Some(self.reply()),
        }
    }
}

fn error_reply(fault: &RpcFault, id: Value, jsonrpc2: bool) -> Value {
    if jsonrpc2 {
        json!({ "jsonrpc": "2.0", "error": fault.to_json(), "id": id })
    } else {
        json!({ "result": null, "error": fault.to_json(), "id": id })
    }
}

fn handle_single(dispatcher: &dyn MethodDispatcher, request: &Value) -> SingleOutcome {
    let Value::Object(object) = request else {
        return SingleOutcome {
            id: Value::Null,
            jsonrpc2: false,
            notification: false,
            result: Err(RpcFault::new(INVALID_REQUEST, "Invalid Request object")),
        };
    };
    let jsonrpc2 = object.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
    let notification = jsonrpc2 && !object.contains_key("id");
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    let result = parse_call(dispatcher, object)
        .and_then(|(method, params)| dispatcher.call(method, &params));
    if let Err(fault) = &result {
        tracing::debug!(target: "rpc", code = fault.code, message = %fault.message, "rpc call failed");
    }
    SingleOutcome {
        id,
        jsonrpc2,
        notification,
        result,
    }
}

/// Extracts the method name and positional params from a request object.
fn parse_call<'a>(
    dispatcher: &dyn MethodDispatcher,
    object: &'a Map<String, Value>,
) -> Result<(&'a str, Vec<Value>), RpcFault> {
    let method = match object.get("method") {
        None => return Err(RpcFault::new(INVALID_REQUEST, "Missing method")),
        Some(Value::String(m)) => m.as_str(),
        Some(_) => return Err(RpcFault::new(INVALID_REQUEST, "Method must be a string")),
    };
    let Some(names) = dispatcher.param_names(method) else {
        return Err(RpcFault::new(METHOD_NOT_FOUND, "Method not found"));
    };
    let params = match object.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(params)) => params.clone(),
        Some(Value::Object(named)) => named_to_positional(names, named)?,
        Some(_) => {
            return Err(RpcFault::new(
                INVALID_REQUEST,
                "Params must be an array or object",
            ))
        }
    };
    Ok((method, params))
}

/// Maps named params to positions (missing ones become `null`, trailing `null`s are dropped).
fn named_to_positional(names: &[&str], named: &Map<String, Value>) -> Result<Vec<Value>, RpcFault> {
    if let Some(unknown) = named.keys().find(|k| !names.contains(&k.as_str())) {
        return Err(RpcFault::invalid_parameter(format!(
            "Unknown named parameter {unknown}"
        )));
    }
    let mut positional: Vec<Value> = names
        .iter()
        .map(|name| named.get(*name).cloned().unwrap_or(Value::Null))
        .collect();
    while positional.last() == Some(&Value::Null) {
        positional.pop();
    }
    Ok(positional)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl MethodDispatcher for Echo {
        fn call(&self, method: &str, params: &[Value]) -> Result<Value, RpcFault> {
            match method {
                "echo" => Ok(Value::Array(params.to_vec())),
                _ => Err(RpcFault::misc("boom")),
            }
        }
        fn param_names(&self, method: &str) -> Option<&'static [&'static str]> {
            match method {
                "echo" => Some(&["a", "b"]),
                "fail" => Some(&[]),
                _ => None,
            }
        }
    }

    fn run(body: &str) -> HttpReply {
        handle_body(&Echo, body.as_bytes())
    }

    #[test]
    fn legacy_request_and_errors() {
        let ok = run(r#"{"method":"echo","params":[1,"x"],"id":7}"#);
        assert_eq!(ok.status, 200);
        assert_eq!(ok.body, Some(json!({"result":[1,"x"],"error":null,"id":7})));

        let missing = run(r#"{"method":"nope","id":1}"#);
        assert_eq!(missing.status, 404);
        assert_eq!(
            missing
                .body
                .as_ref()
                .and_then(|b| b["error"]["code"].as_i64()),
            Some(METHOD_NOT_FOUND)
        );

        let parse = run("{not json");
        assert_eq!(parse.status, 500);
        assert_eq!(
            parse
                .body
                .as_ref()
                .and_then(|b| b["error"]["code"].as_i64()),
            Some(PARSE_ERROR)
        );

        let invalid = run(r#"{"params":[],"id":1}"#);
        assert_eq!(invalid.status, 400);
        assert_eq!(
            invalid
                .body
                .as_ref()
                .and_then(|b| b["error"]["code"].as_i64()),
            Some(INVALID_REQUEST)
        );

        let fail = run(r#"{"method":"fail","id":"a"}"#);
        assert_eq!(fail.status, 500);
        assert_eq!(
            fail.body,
            Some(json!({"result":null,"error":{"code":-1,"message":"boom"},"id":"a"}))
        );
    }

    #[test]
    fn named_params_map_to_positions() {
        let ok = run(r#"{"method":"echo","params":{"b":2,"a":1},"id":1}"#);
        assert_eq!(
            ok.body.as_ref().map(|b| b["result"].clone()),
            Some(json!([1, 2]))
        );
        let only_a = run(r#"{"method":"echo","params":{"a":1},"id":1}"#);
        assert_eq!(
            only_a.body.as_ref().map(|b| b["result"].clone()),
            Some(json!([1]))
        );
        let unknown = run(r#"{"method":"echo","params":{"c":1},"id":1}"#);
        assert_eq!(
            unknown
                .body
                .as_ref()
                .and_then(|b| b["error"]["code"].as_i64()),
            Some(INVALID_PARAMETER)
        );
    }

    #[test]
    fn jsonrpc2_batch_and_notification() {
        let batch = run(r#"[{"jsonrpc":"2.0","method":"echo","params":[1],"id":1},
                            {"jsonrpc":"2.0","method":"echo","params":[2]},
                            {"method":"nope","id":3}, 5]"#);
        assert_eq!(batch.status, 200);
        let items = batch
            .body
            .as_ref()
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        assert_eq!(items.len(), 3, "the notification gets no reply: {items:?}");
        assert_eq!(items[0], json!({"jsonrpc":"2.0","result":[1],"id":1}));
        assert_eq!(items[1]["error"]["code"], json!(METHOD_NOT_FOUND));
        assert_eq!(items[2]["error"]["code"], json!(INVALID_REQUEST));

        let error2 = run(r#"{"jsonrpc":"2.0","method":"nope","id":1}"#);
        assert_eq!(error2.status, 200);
        let notification = run(r#"{"jsonrpc":"2.0","method":"echo"}"#);
        assert_eq!(
            notification,
            HttpReply {
                status: 204,
                body: None
            }
        );
    }
}
