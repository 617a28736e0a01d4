//! Where a request comes from and whether it may: the client's address (the peer, or the address a
//! trusted proxy names in `X-Forwarded-For`), the `Host` header against the server's names (DNS
//! rebinding), and the `Origin` of state-changing requests against the server's own (cross-site requests).

use std::net::{IpAddr, SocketAddr};

use axum::extract::connect_info::Connected;
use axum::http::{HeaderMap, header};
use axum::serve::IncomingStream;

use crate::api::ApiError;

/// The peer address of a connection, as a request extension (`ConnectInfo<ClientAddr>`), for plain and TLS
/// listeners alike.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, crate::tls::TlsListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// The client a request is from: the peer's address, or — when the peer is a trusted proxy — the address
/// before the last trusted hop in `X-Forwarded-For` (a client cannot name itself past a proxy that appends
/// what it saw).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    hops.into_iter()
        .rev()
        .find(|h| !trusted.contains(h))
        .unwrap_or(peer)
}

/// The names the server answers to (host names and addresses, without ports), or any name.
#[derive(Clone, Debug)]
pub enum Hosts {
    /// Every `Host` is accepted (`allowed_hosts = ["*"]`).
    Any,
    /// Only these (lower case).
    Only(Vec<String>),
}

impl Hosts {
    /// This machine's names: loopback names, its host name, the listen address and, for a wildcard
    /// listen address, the addresses of its interfaces.
    pub fn defaults(listen: SocketAddr, host_name: &str) -> Vec<String> {
        let mut v: Vec<String> = ["localhost", "127.0.0.1", "::1", host_name]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        if listen.ip().is_unspecified() {
            v.extend(interface_addresses().iter().map(IpAddr::to_string));
        } else {
            v.push(listen.ip().to_string());
        }
        v
    }

    /// The configured names, or (when none are configured) [`Hosts::defaults`].
    pub fn new(configured: &[String], listen: SocketAddr, host_name: &str) -> Hosts {
        if configured.iter().any(|h| h == "*") {
            return Hosts::Any;
        }
        let mut names: Vec<String> = if configured.is_empty() {
            Self::defaults(listen, host_name)
        } else {
            configured.to_vec()
        };
        for n in &mut names {
            *n = n
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase();
        }
        names.sort();
        names.dedup();
        Hosts::Only(names)
    }

    /// Fails with 403 unless the request's `Host` is one of the names; returns it (with its port).
    pub fn check<'h>(&self, headers: &'h HeaderMap) -> Result<&'h str, ApiError> {
        let raw = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if raw.is_empty() {
            return Err(ApiError::invalid("Host", "the request has no Host header"));
        }
        let name = host_name_of(raw).to_ascii_lowercase();
        match self {
            Hosts::Any => Ok(raw),
            Hosts::Only(names) if names.contains(&name) => Ok(raw),
            Hosts::Only(_) => Err(ApiError::forbidden_code(
                "host_not_allowed",
                format!(
                    "this server does not answer to the host name '{name}': add it to allowed_hosts \
                     (JOBSCHED_ALLOWED_HOSTS) if it is one of its names"
                ),
            )),
        }
    }
}

/// `host` of `host:port`, `[v6]:port` or a bare name.
fn host_name_of(raw: &str) -> &str {
    if let Some(rest) = raw.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match raw.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => raw,
    }
}

/// The addresses of this machine's network interfaces.
fn interface_addresses() -> Vec<IpAddr> {
    nix::ifaddrs::getifaddrs()
        .map(|addrs| {
            addrs
                .filter_map(|a| a.address)
                .filter_map(|a| {
                    a.as_sockaddr_in()
                        .map(|v4| IpAddr::V4(v4.ip()))
                        .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Fails with 403 if a state-changing request comes from another site: its `Origin` is neither the
/// server's own (`scheme://Host`) nor an allowed one, or the browser marks it `Sec-Fetch-Site:
/// cross-site`. Requests without these headers (command-line clients) pass: they carry no cookie a site
/// could ride on, and still need a token.
pub fn check_origin(
    headers: &HeaderMap,
    scheme: &str,
    host: &str,
    allowed: &[String],
) -> Result<(), ApiError> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(cross_site("the browser marked the request cross-site"));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").trim_end_matches('/');
    let own = format!("{scheme}://{host}");
    if origin.eq_ignore_ascii_case(&own)
        || allowed
            .iter()
            .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        Ok(())
    } else {
        Err(cross_site(&format!(
            "requests that change something are accepted only from this server's own pages ({own}); \
             '{origin}' is another origin (allow it with allowed_origins)"
        )))
    }
}

fn cross_site(why: &str) -> ApiError {
    ApiError::forbidden_code("cross_origin", why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.9".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4")]);
        let me: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(client_ip(me, &h, &[]), me, "a spoofed header is ignored");
        assert_eq!(
            client_ip(proxy, &h, &[proxy]),
            "1.2.3.4".parse::<IpAddr>().unwrap(),
            "the address the proxy saw, not what the client wrote before it"
        );
    }

    #[test]
    fn hosts_and_origins() {
        let hosts = Hosts::new(&[], "127.0.0.1:8080".parse().unwrap(), "box");
        assert!(hosts.check(&headers(&[("host", "127.0.0.1:8080")])).is_ok());
        assert!(hosts.check(&headers(&[("host", "LOCALHOST:8080")])).is_ok());
        assert!(hosts.check(&headers(&[("host", "[::1]:8080")])).is_ok());
        let e = hosts
            .check(&headers(&[("host", "evil.example:8080")]))
            .unwrap_err();
        assert!(e.message.contains("allowed_hosts"), "{}", e.message);
        let any = Hosts::new(&["*".into()], "0.0.0.0:80".parse().unwrap(), "box");
        assert!(any.check(&headers(&[("host", "x.example")])).is_ok());

        let own = "127.0.0.1:8080";
        assert!(check_origin(&headers(&[]), "http", own, &[]).is_ok());
        assert!(
            check_origin(
                &headers(&[("origin", "http://127.0.0.1:8080")]),
                "http",
                own,
                &[]
            )
            .is_ok()
        );
        assert!(
            check_origin(
                &headers(&[("origin", "http://evil.example")]),
                "http",
                own,
                &[]
            )
            .is_err()
        );
        assert!(check_origin(&headers(&[("origin", "null")]), "http", own, &[]).is_err());
        assert!(
            check_origin(
                &headers(&[("origin", "https://ui.example")]),
                "http",
                own,
                &["https://ui.example".into()]
            )
            .is_ok()
        );
        assert!(
            check_origin(
                &headers(&[("sec-fetch-site", "cross-site")]),
                "http",
                own,
                &[]
            )
            .is_err()
        );
    }
}
