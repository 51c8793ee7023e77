//! The env sealer gives templates, scripts and hooks: the image's, the Clusterfile's, and
//! the values it computes (registry addresses, service IPs, IP family, `HostIP`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::cluster::Cluster;
use super::error::ClusterfileError;

/// Keys sealer computes; values the Clusterfile gives for them are dropped.
pub const RESERVED_KEYS: &[&str] = &[
    "LocalRegistryDomain",
    "LocalRegistryPort",
    "LocalRegistryURL",
    "ExternalRegistryDomain",
    "ExternalRegistryPort",
    "ExternalRegistryURL",
    "RegistryDomain",
    "RegistryPort",
    "RegistryURL",
    "ContainerRuntime",
    "DNSSvcIP",
    "KubeSvcIP",
    "HostIPFamily",
];

/// The key only a host group's env may set (for a host whose node IP differs from the
/// address sealer reaches it at); the cluster's env may not.
pub(crate) const HOST_ONLY_KEY: &str = "HostIP";

/// `a.b.c.d/n` or `x::y/n`: the network address (host bits cleared) and prefix length.
pub(crate) fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = text.trim().split_once('/')?;
    let address: IpAddr = address.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    match address {
        IpAddr::V4(v4) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            Some((IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask)), prefix))
        }
        IpAddr::V6(v6) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            Some((IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)), prefix))
        }
        _ => None,
    }
}

/// The `index`-th address of a network (the network address is the 0th); `None` past its end.
fn nth_ip(network: IpAddr, prefix: u8, index: u32) -> Option<IpAddr> {
    match network {
        IpAddr::V4(v4) => {
            let size = 1u64 << (32 - u32::from(prefix));
            (u64::from(index) < size).then(|| IpAddr::V4(Ipv4Addr::from(u32::from(v4) + index)))
        }
        IpAddr::V6(v6) => {
            let bits = 128 - u32::from(prefix);
            let fits = bits >= 32 || u128::from(index) < (1u128 << bits);
            fits.then(|| IpAddr::V6(Ipv6Addr::from(u128::from(v6) + u128::from(index))))
        }
    }
}

impl Cluster {
    /// The cluster env: the image's env, then `spec.env` (later entries win; reserved keys
    /// were dropped when reading), then the computed keys: `LocalRegistryDomain/Port/URL`,
    /// `ExternalRegistryDomain/Port/URL`, `RegistryDomain/Port/URL` (the registry clients
    /// use), `ContainerRuntime` (when `spec.containerRuntime` is set), `KubeSvcIP` and
    /// `DNSSvcIP` (the 1st and 10th address of the first `SvcCIDR` network) and
    /// `HostIPFamily=IPv6` for IPv6 clusters.
    ///
    /// Fails only when the image's own `SvcCIDR` is not a CIDR.
    pub fn cluster_env(
        &self,
        image_env: &[(String, String)],
    ) -> Result<BTreeMap<String, String>, ClusterfileError> {
        let mut env: BTreeMap<String, String> = image_env.iter().cloned().collect();
        env.extend(self.env.iter().cloned());
        self.add_computed(&mut env)?;
        Ok(env)
    }

    /// The env of one host: [`Cluster::cluster_env`] overlaid by the host group's env, then
    /// `HostIP` (the host's IP unless its group's env sets it). `None` for an unknown IP.
    pub fn host_env(
        &self,
        ip: IpAddr,
        image_env: &[(String, String)],
    ) -> Result<Option<BTreeMap<String, String>>, ClusterfileError> {
        let Some(host) = self.host(ip) else {
            return Ok(None);
        };
        let mut env: BTreeMap<String, String> = image_env.iter().cloned().collect();
        env.extend(
            host.env
                .iter()
                .map(|(key, value)| (key.clone(), value.clone())),
        );
        self.add_computed(&mut env)?;
        env.entry("HostIP".to_owned())
            .or_insert_with(|| ip.to_string());
        Ok(Some(env))
    }

    fn add_computed(&self, env: &mut BTreeMap<String, String>) -> Result<(), ClusterfileError> {
        if let Some(local) = &self.registry.local {
            let endpoint = &local.endpoint;
            env.insert("LocalRegistryDomain".to_owned(), endpoint.domain.clone());
            env.insert("LocalRegistryPort".to_owned(), port_text(endpoint.port));
            env.insert("LocalRegistryURL".to_owned(), endpoint.url());
        }
        if let Some(external) = &self.registry.external {
            env.insert("ExternalRegistryDomain".to_owned(), external.domain.clone());
            env.insert("ExternalRegistryPort".to_owned(), port_text(external.port));
            env.insert("ExternalRegistryURL".to_owned(), external.url());
        }
        let effective = self.registry.effective();
        env.insert("RegistryDomain".to_owned(), effective.domain.clone());
        env.insert("RegistryPort".to_owned(), port_text(effective.port));
        env.insert("RegistryURL".to_owned(), effective.url());
        if let Some(runtime) = &self.container_runtime {
            env.insert("ContainerRuntime".to_owned(), runtime.clone());
        }
        if let Some(svc_cidr) = env
            .get("SvcCIDR")
            .filter(|value| !value.is_empty())
            .cloned()
        {
            let first = svc_cidr.split(',').next().unwrap_or_default();
            let invalid = |message: &str| ClusterfileError::ImageEnv {
                key: "SvcCIDR".to_owned(),
                value: svc_cidr.clone(),
                message: message.to_owned(),
            };
            let (network, prefix) =
                parse_cidr(first).ok_or_else(|| invalid("not a CIDR (e.g. 10.96.0.0/16)"))?;
            let kube = nth_ip(network, prefix, 1)
                .ok_or_else(|| invalid("the network has no 1st address"))?;
            let dns = nth_ip(network, prefix, 10)
                .ok_or_else(|| invalid("the network is too small for a 10th address"))?;
            env.insert("KubeSvcIP".to_owned(), kube.to_string());
            env.insert("DNSSvcIP".to_owned(), dns.to_string());
        }
        if self.is_ipv6() {
            env.insert("HostIPFamily".to_owned(), "IPv6".to_owned());
        }
        Ok(())
    }
}

fn port_text(port: Option<u16>) -> String {
    port.map(|port| port.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_indexes() {
        let (network, prefix) = parse_cidr("10.96.3.7/16").expect("a CIDR");
        assert_eq!((network.to_string().as_str(), prefix), ("10.96.0.0", 16));
        assert_eq!(
            nth_ip(network, prefix, 10).map(|ip| ip.to_string()),
            Some("10.96.0.10".to_owned())
        );
        let (network, prefix) = parse_cidr("fd00:10:96::/112").expect("a CIDR");
        assert_eq!(
            nth_ip(network, prefix, 1).map(|ip| ip.to_string()),
            Some("fd00:10:96::1".to_owned())
        );
        let (network, prefix) = parse_cidr("10.0.0.0/30").expect("a CIDR");
        assert_eq!(nth_ip(network, prefix, 10), None);
        for bad in ["10.0.0.0", "10.0.0.0/33", "x/8", "10.0.0.0/a"] {
            assert_eq!(parse_cidr(bad), None, "{bad}");
        }
        assert_eq!(
            parse_cidr("0.0.0.0/0").map(|(ip, _)| ip.to_string()),
            Some("0.0.0.0".to_owned())
        );
    }
}
