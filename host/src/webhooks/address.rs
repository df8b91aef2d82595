//! Where a webhook may be delivered. A merchant names the URL, and the host posts to
//! it from inside the operator's network, so by default an endpoint must be a public
//! address: not loopback, private, link-local (the cloud metadata service at
//! 169.254.169.254), shared, multicast or unspecified, in IPv4 or IPv6 (an
//! IPv4-mapped IPv6 address counts as its IPv4 one). Registration refuses such an
//! address written in the URL, and `localhost`; delivery resolves a host name and
//! connects only to its public addresses, so a name that resolves (or later
//! re-resolves) to a private one gets no request. An operator whose receivers are on
//! its own network allows them with `--webhook-allow-private`.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};

/// Whether `ip` is an address on the public internet (see the module docs).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        // "This network" (0/8) and shared address space for carrier-grade NAT (100.64/10).
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        // Reserved for future use (240/4).
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local (fc00::/7) and link-local (fe80::/10).
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80)
}

/// Why the host part of a URL (as written, IPv6 in brackets, without the port) may
/// not be an endpoint's, if it may not.
pub fn refused_host(host: &str) -> Option<String> {
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return Some(format!("{host} is this machine"));
    }
    let literal = name.trim_start_matches('[').trim_end_matches(']');
    match literal.parse::<IpAddr>() {
        Ok(ip) if !is_public(ip) => Some(format!(
            "{ip} is not a public address (loopback, private, link-local or reserved)"
        )),
        _ => None,
    }
}

/// The host part of an absolute URL, as written (IPv6 in brackets), as hyper reads it.
pub fn host_of(url: &str) -> Option<String> {
    url.parse::<hyper::Uri>().ok()?.host().map(str::to_string)
}

/// Why an endpoint at `url` may not be posted to, if it may not (see
/// [`refused_host`]).
pub fn refused_url(url: &str) -> Option<String> {
    refused_host(&host_of(url)?)
}

/// The webhook client's resolver: the system's, keeping only public addresses unless
/// the operator allows private ones.
#[derive(Clone)]
pub(crate) struct Resolver {
    system: GaiResolver,
    allow_private: bool,
}

impl Resolver {
    pub(crate) fn new(allow_private: bool) -> Resolver {
        Resolver {
            system: GaiResolver::new(),
            allow_private,
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.system.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let resolving = self.system.call(name.clone());
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = resolving
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!(
                    "{name} has no public address (private addresses are not allowed)"
                )
                .into());
            }
            Ok(addrs.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_reserved_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn hosts_are_read_from_urls_as_written() {
        assert_eq!(
            host_of("http://127.0.0.1:9/hook").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(host_of("https://[::1]:8443/x").as_deref(), Some("[::1]"));
        assert_eq!(
            host_of("http://user:pw@10.0.0.1/x").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(
            host_of("http://hooks.example.com?x=1").as_deref(),
            Some("hooks.example.com")
        );
        assert!(refused_host("[::1]").is_some());
        assert!(refused_host("LOCALHOST.").is_some());
        assert!(refused_host("api.localhost").is_some());
        assert!(refused_host("169.254.169.254").is_some());
        assert_eq!(refused_host("hooks.example.com"), None);
        assert_eq!(refused_host("93.184.216.34"), None);
    }

    #[tokio::test]
    async fn the_resolver_keeps_public_addresses_only_unless_allowed() {
        use tower_service::Service;
        let name: Name = "localhost".parse().unwrap();
        let refused = Resolver::new(false).call(name.clone()).await;
        assert!(refused.is_err(), "localhost resolved for a strict resolver");
        let allowed: Vec<SocketAddr> = Resolver::new(true).call(name).await.unwrap().collect();
        assert!(allowed.iter().all(|a| a.ip().is_loopback()), "{allowed:?}");
    }
}
