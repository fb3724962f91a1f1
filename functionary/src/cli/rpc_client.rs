//! A small blocking JSON-RPC client for `functionaryd`: HTTP/1.1 POST over `std::net::TcpStream` with
//! Content-Length, basic auth from the cookie file and a timeout. Used by `functionary-cli`, the tests and devnet.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

/// Default time allowed for connecting, sending and receiving one call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest response accepted (64 MiB).
const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// Why an RPC call failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server answered with a JSON-RPC error.
    #[error("error code: {code}\nerror message:\n{message}")]
    Rpc {
        /// bitcoind-style error code.
        code: i64,
        /// The server's message.
        message: String,
    },
    /// Nothing listens at the address (or it cannot be reached).
    #[error("could not connect to the server at {addr}: {source}\n\nMake sure functionaryd is running and that you \
             are connecting to the correct RPC address (--rpcconnect or rpc_bind in node.toml).")]
    Connect {
        /// The address tried.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The address is not `HOST:PORT` or does not resolve.
    #[error("cannot resolve the RPC address {addr:?}: {reason}")]
    Resolve {
        /// The address given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The server rejected the credentials (HTTP 401).
    #[error("incorrect rpc credentials for {addr} (HTTP 401): is the cookie file {cookie_file} from the running \
             functionaryd?")]
    Auth {
        /// The server address.
        addr: String,
        /// The cookie file the credentials came from.
        cookie_file: String,
    },
    /// The cookie file could not be read.
    #[error("cannot read the RPC cookie file {path}: {source} (is functionaryd running with this data dir?)")]
    Cookie {
        /// The cookie file's path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Sending the request or reading the reply failed (including timeouts).
    #[error("rpc i/o with {addr} failed: {source}")]
    Io {
        /// The server address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The reply was not a valid HTTP response or JSON-RPC reply.
    #[error("bad reply from {addr}: {reason}")]
    BadResponse {
        /// The server address.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server answered with an HTTP error and no JSON-RPC error object.
    #[error("server at {addr} answered HTTP {status}: {body}")]
    Http {
        /// The server address.
        addr: String,
        /// HTTP status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
}

/// One HTTP reply: status and body bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    /// HTTP status code.
    pub status: u16,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

/// A JSON-RPC client for one server, authenticating with a cookie file.
#[derive(Clone, Debug)]
pub struct RpcClient {
    addr: String,
    cookie_file: PathBuf,
    timeout: Duration,
}

impl RpcClient {
    /// A client for the server at `addr` (`HOST:PORT`) using the cookie in `cookie_file`.
    pub fn new(addr: impl ToString, cookie_file: impl Into<PathBuf>) -> Self {
        Self {
            addr: addr.to_string(),
            cookie_file: cookie_file.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client with another timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The server address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Calls `method` with positional `params`; returns the result or the server's error.
    pub fn call(&self, method: &str, params: &[Value]) -> Result<Value, CliError> {
        let request = json!({ "jsonrpc": "1.0", "id": 1, "method": method, "params": params });
        let reply = self.post(request.to_string().as_bytes())?;
        let body: Value = serde_json::from_slice(&reply.body).map_err(|e| {
            if reply.status == 200 {
                CliError::BadResponse {
                    addr: self.addr.clone(),
                    reason: format!("reply is not JSON: {e}"),
                }
            } else {
                self.http_error(&reply)
            }
        })?;
        if let Some(error) = body.get("error").filter(|e| !e.is_null()) {
            return Err(CliError::Rpc {
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        if reply.status != 200 {
            return Err(self.http_error(&reply));
        }
        body.get("result")
            .cloned()
            .ok_or_else(|| CliError::BadResponse {
                addr: self.addr.clone(),
                reason: "reply has neither result nor error".to_string(),
            })
    }

    /// POSTs a raw body with the cookie's credentials; 401 becomes [`CliError::Auth`].
    pub fn post(&self, body: &[u8]) -> Result<HttpReply, CliError> {
        let credentials = read_cookie(&self.cookie_file)?;
        let authorization = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials.trim())
        );
        let reply = http_post(&self.addr, Some(&authorization), body, self.timeout)?;
        if reply.status == 401 {
            return Err(CliError::Auth {
                addr: self.addr.clone(),
                cookie_file: self.cookie_file.display().to_string(),
            });
        }
        Ok(reply)
    }

    fn http_error(&self, reply: &HttpReply) -> CliError {
        let text = String::from_utf8_lossy(&reply.body);
        CliError::Http {
            addr: self.addr.clone(),
            status: reply.status,
            body: text
                .chars()
                .take(200)
                .collect::<String>()
                .trim()
                .to_string(),
        }
    }
}

fn read_cookie(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Cookie {
        path: path.to_path_buf(),
        source,
    })
}

/// Sends one HTTP/1.1 POST to `/` at `addr` with an optional `Authorization` header value and returns the reply.
pub fn http_post(
    addr: &str,
    authorization: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> Result<HttpReply, CliError> {
    let socket_addr = resolve(addr)?;
    let io_error = |source| CliError::Io {
        addr: addr.to_string(),
        source,
    };
    let mut stream =
        TcpStream::connect_timeout(&socket_addr, timeout).map_err(|source| CliError::Connect {
            addr: addr.to_string(),
            source,
        })?;
    stream.set_read_timeout(Some(timeout)).map_err(io_error)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_error)?;

    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: \
         close\r\n",
        body.len()
    );
    if let Some(authorization) = authorization {
        request.push_str("Authorization: ");
        request.push_str(authorization);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).map_err(io_error)?;
    stream.flush().map_err(io_error)?;

    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut raw)
        .map_err(io_error)?;
    parse_response(&raw).map_err(|reason| CliError::BadResponse {
        addr: addr.to_string(),
        reason,
    })
}

fn resolve(addr: &str) -> Result<SocketAddr, CliError> {
    let resolve_error = |reason: String| CliError::Resolve {
        addr: addr.to_string(),
        reason,
    };
    addr.to_socket_addrs()
        .map_err(|e| resolve_error(e.to_string()))?
        .next()
        .ok_or_else(|| resolve_error("no address found".to_string()))
}

/// Parses a complete HTTP/1.1 response (status line, headers, body by Content-Length, chunked or until EOF).
fn parse_response(raw: &[u8]) -> Result<HttpReply, String> {
    let head_end = find(raw, b"\r\n\r\n").ok_or("response has no end of headers")?;
    let head = std::str::from_utf8(raw.get(..head_end).unwrap_or_default())
        .map_err(|_| "response headers are not UTF-8".to_string())?;
    let rest = raw.get(head_end + 4..).unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            chunked = true;
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(len) = content_length {
        rest.get(..len)
            .ok_or_else(|| format!("body is {} bytes, Content-Length says {len}", rest.len()))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpReply { status, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or("chunk size line not terminated")?;
        let size_text =
            std::str::from_utf8(data.get(..line_end).unwrap_or_default()).unwrap_or_default();
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = data.get(line_end + 2..).unwrap_or_default();
        if size == 0 {
            return Ok(body);
        }
        let chunk = data.get(..size).ok_or("chunk shorter than its size")?;
        body.extend_from_slice(chunk);
        data = data.get(size..).unwrap_or_default();
        data = data
            .strip_prefix(b"\r\n")
            .ok_or("chunk not followed by CRLF")?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked_responses() {
        let plain = parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabcdef")
            .expect("valid");
        assert_eq!(
            plain,
            HttpReply {
                status: 404,
                body: b"abc".to_vec()
            }
        );
        let chunked =
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
                .expect("valid");
        assert_eq!(chunked.body, b"abcde".to_vec());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").is_err());
        assert!(parse_response(b"garbage").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }

    #[test]
    fn connection_refused_names_the_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let err = http_post(&addr.to_string(), None, b"{}", Duration::from_secs(2))
            .expect_err("nothing listens");
        assert!(matches!(err, CliError::Connect { .. }), "{err:?}");
        assert!(err.to_string().contains(&addr.to_string()));
    }

    #[test]
    fn missing_cookie_names_the_file() {
        let client = RpcClient::new("127.0.0.1:1", "/nonexistent/dir/.cookie");
        let err = client.call("getblockcount", &[]).expect_err("no cookie");
        assert!(matches!(err, CliError::Cookie { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/dir/.cookie"));
    }
}
