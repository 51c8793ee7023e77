//! The LLB caps a daemon advertises (Pong's `llb_caps`), checked before solving so a
//! missing feature is reported clearly rather than by the daemon's validation.

use std::collections::BTreeMap;

use bollard_buildkit_proto::moby::buildkit::v1::apicaps::ApiCap;

/// A cap the daemon lacks or has disabled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the BuildKit daemon does not support `{cap}`{reason}; upgrade Docker/BuildKit to a version that has this feature"
)]
pub struct MissingCap {
    /// The cap id.
    pub cap: String,
    /// `: <why>` when the daemon said why it is disabled, else empty.
    reason: String,
}

/// The caps of one daemon, by id.
#[derive(Debug, Clone, Default)]
pub struct Caps {
    caps: BTreeMap<String, ApiCap>,
}

impl Caps {
    /// From Pong's list.
    pub fn from_pong(caps: &[ApiCap]) -> Self {
        Caps {
            caps: caps
                .iter()
                .map(|cap| (cap.id.clone(), cap.clone()))
                .collect(),
        }
    }

    /// Ok when the daemon has `cap` enabled.
    pub fn require(&self, cap: &str) -> Result<(), MissingCap> {
        match self.caps.get(cap) {
            Some(found) if found.enabled => Ok(()),
            Some(found) => {
                let why = [
                    found.disabled_reason_msg.as_str(),
                    found.disabled_reason.as_str(),
                ]
                .into_iter()
                .find(|text| !text.is_empty());
                Err(MissingCap {
                    cap: cap.to_owned(),
                    reason: why.map(|text| format!(": {text}")).unwrap_or_default(),
                })
            }
            None => Err(MissingCap {
                cap: cap.to_owned(),
                reason: String::new(),
            }),
        }
    }

    /// Ok when every cap in `caps` is enabled; the error names the first missing one.
    pub fn require_all<'a>(
        &self,
        caps: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), MissingCap> {
        caps.into_iter().try_for_each(|cap| self.require(cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(id: &str, enabled: bool, reason: &str) -> ApiCap {
        ApiCap {
            id: id.to_owned(),
            enabled,
            disabled_reason_msg: reason.to_owned(),
            ..ApiCap::default()
        }
    }

    #[test]
    fn require_reports_missing_and_disabled_caps() {
        let caps = Caps::from_pong(&[
            cap("file.base", true, ""),
            cap("exec.mount.ssh", false, "no agent"),
        ]);
        assert_eq!(caps.require("file.base"), Ok(()));
        let missing = caps
            .require("source.http.checksum")
            .expect_err("not advertised");
        assert_eq!(
            missing.to_string(),
            "the BuildKit daemon does not support `source.http.checksum`; upgrade Docker/BuildKit to a version that has this feature"
        );
        let disabled = caps.require("exec.mount.ssh").expect_err("disabled");
        assert!(
            disabled.to_string().contains("`exec.mount.ssh`: no agent;"),
            "{disabled}"
        );
        let wanted = ["file.base".to_owned(), "exec.mount.ssh".to_owned()];
        assert_eq!(
            caps.require_all(&wanted).map_err(|e| e.cap),
            Err("exec.mount.ssh".to_owned())
        );
    }
}
