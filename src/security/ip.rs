//! Who may connect: `allowed_ips` and `blocked_ips` (single addresses and CIDR ranges, IPv4
//! and IPv6) matched against the client's address, read from `X-Forwarded-For` only when the
//! connection itself comes from a proxy listed in `trusted_proxy_ranges`.

use std::net::{IpAddr, SocketAddr};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use ipnet::IpNet;

use crate::error::ApiError;
use crate::state::AppState;

/// The probes a load balancer or orchestrator calls: they reveal nothing, so `allowed_ips`
/// does not apply to them (as in LiteLLM, where they are outside authentication).
const PROBES: [&str; 3] = [
    "/health/liveliness",
    "/health/liveness",
    "/health/readiness",
];

/// The address filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpFilter {
    /// When not empty, only these may call.
    pub allowed: Vec<IpNet>,
    /// These may never call (they win over `allowed`).
    pub blocked: Vec<IpNet>,
    /// `use_x_forwarded_for`: read the client from the header (from trusted proxies only).
    pub use_x_forwarded_for: bool,
    /// `trusted_proxy_ranges`: the proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

/// IPv4 seen through an IPv6 socket (`::ffff:10.0.0.1`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// An address (`10.0.0.1`, `2001:db8::1`) or a CIDR range (`10.0.0.0/8`, `2001:db8::/32`).
pub fn parse_net(text: &str) -> Option<IpNet> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Some(match net {
            IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
                // A range written in the mapped form matches the IPv4 addresses it means.
                Some(v4) if v6.prefix_len() >= 96 => {
                    IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).ok()?
                }
                _ => net,
            },
            v4 => v4,
        });
    }
    text.parse::<IpAddr>()
        .ok()
        .map(|ip| IpNet::from(canonical(ip)))
}

/// One `X-Forwarded-For` entry: an address, possibly with a port or in brackets.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
        })
        .map(canonical)
}

fn listed(list: &[IpNet], ip: IpAddr) -> bool {
    list.iter().any(|net| net.contains(&ip))
}

impl IpFilter {
    /// The client's address: the peer's, unless the peer is a trusted proxy and
    /// `use_x_forwarded_for` is on; then the nearest address in `X-Forwarded-For` that is not a
    /// trusted proxy, read from the right (entries further left are the client's to write).
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let mut client = canonical(peer);
        if !self.use_x_forwarded_for || !listed(&self.trusted_proxies, client) {
            return client;
        }
        let hops = forwarded_for
            .iter()
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty());
        for hop in hops.rev() {
            // An entry that is not an address ends the walk at the last one that was.
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !listed(&self.trusted_proxies, ip) {
                return ip;
            }
        }
        client
    }

    /// Whether `ip` may call `path`.
    pub fn admits(&self, ip: IpAddr, path: &str) -> bool {
        let ip = canonical(ip);
        if listed(&self.blocked, ip) {
            return false;
        }
        self.allowed.is_empty() || listed(&self.allowed, ip) || PROBES.contains(&path)
    }
}

/// The middleware: mounted only when a filter is configured, so it costs nothing otherwise.
pub async fn ip_filter(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let admitted = match (
        req.app_data::<web::Data<AppState>>()
            .and_then(|s| s.settings.security.ip_filter.as_ref()),
        req.peer_addr(),
    ) {
        (None, _) => true,
        // No peer address (not a TCP connection): nothing to check it against.
        (Some(_), None) => false,
        (Some(filter), Some(peer)) => {
            let forwarded: Vec<&str> = req
                .headers()
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok())
                .collect();
            let client = filter.client_ip(peer.ip(), &forwarded);
            let admitted = filter.admits(client, req.path());
            if !admitted {
                log::info!(
                    "refused {} {} from {client}: not allowed by allowed_ips / blocked_ips",
                    req.method(),
                    req.path()
                );
            }
            admitted
        }
    };
    if admitted {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let response = ApiError::IpNotAllowed.error_response();
    Ok(req.into_response(response).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| parse_net(n).unwrap()).collect()
    }

    #[test]
    fn single_addresses_and_ranges_of_both_families_match() {
        let f = IpFilter {
            allowed: nets(&["192.168.1.1", "10.0.0.0/8", "2001:db8::/32", "::1"]),
            ..IpFilter::default()
        };
        for yes in [
            "192.168.1.1",
            "10.200.3.4",
            "2001:db8:1::7",
            "::1",
            "::ffff:10.1.1.1",
        ] {
            assert!(f.admits(ip(yes), "/v1/models"), "{yes}");
        }
        for no in ["192.168.1.2", "11.0.0.1", "2001:db9::1", "127.0.0.1"] {
            assert!(!f.admits(ip(no), "/v1/models"), "{no}");
        }
    }

    #[test]
    fn blocked_wins_over_allowed_and_probes_skip_only_the_allow_list() {
        let f = IpFilter {
            allowed: nets(&["10.0.0.0/8"]),
            blocked: nets(&["10.0.0.5", "172.16.0.0/12"]),
            ..IpFilter::default()
        };
        assert!(!f.admits(ip("10.0.0.5"), "/v1/models"));
        assert!(f.admits(ip("10.0.0.6"), "/v1/models"));
        assert!(f.admits(ip("192.0.2.1"), "/health/liveliness"));
        assert!(!f.admits(ip("172.16.0.1"), "/health/liveliness"));
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_proxies_right_to_left() {
        let f = IpFilter {
            use_x_forwarded_for: true,
            trusted_proxies: nets(&["10.0.0.0/8", "fd00::/8"]),
            ..IpFilter::default()
        };
        // Not from a trusted proxy: the header is the caller's to invent.
        assert_eq!(
            f.client_ip(ip("203.0.113.9"), &["1.2.3.4"]),
            ip("203.0.113.9")
        );
        // From a trusted proxy: the nearest untrusted entry, not the spoofable leftmost.
        assert_eq!(
            f.client_ip(ip("10.0.0.2"), &["1.2.3.4, 198.51.100.7, 10.0.0.3"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            f.client_ip(ip("10.0.0.2"), &["1.2.3.4", "198.51.100.7:5555"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            f.client_ip(ip("fd00::1"), &["[2001:db8::9]"]),
            ip("2001:db8::9")
        );
        // Garbage stops the walk at the last address that could be read.
        assert_eq!(
            f.client_ip(ip("10.0.0.2"), &["1.2.3.4, junk"]),
            ip("10.0.0.2")
        );
        // use_x_forwarded_for off: never read.
        let off = IpFilter {
            use_x_forwarded_for: false,
            ..f
        };
        assert_eq!(off.client_ip(ip("10.0.0.2"), &["1.2.3.4"]), ip("10.0.0.2"));
    }
}
