//! Small ABI value types shared by every module.

use std::fmt;

/// Log level of a `proxy_log` call (proxy-wasm numbering, equal to Envoy's spdlog levels).
/// The default is Envoy's default, `info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
    Critical,
}

impl Level {
    pub(crate) fn from_abi(v: u32) -> Option<Level> {
        Some(match v {
            0 => Level::Trace,
            1 => Level::Debug,
            2 => Level::Info,
            3 => Level::Warn,
            4 => Level::Error,
            5 => Level::Critical,
            _ => return None,
        })
    }

    pub(crate) fn to_abi(self) -> u32 {
        self as u32
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" | "warning" => Level::Warn,
            "error" | "err" => Level::Error,
            "critical" => Level::Critical,
            _ => return None,
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `WasmResult` codes returned by host calls (proxy-wasm v0.2.1 numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    ParseFailure = 4,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    BrokenConnection = 11,
    Unimplemented = 12,
}

impl Status {
    pub(crate) fn code(self) -> i32 {
        self as i32
    }
}

/// Which proxy-wasm ABI the module declares through its `proxy_abi_version_*` export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbiVersion {
    V0_1_0,
    V0_2_0,
    V0_2_1,
}

impl AbiVersion {
    pub(crate) fn detect<'a>(mut exports: impl Iterator<Item = &'a str>) -> Option<AbiVersion> {
        let mut found = None;
        for name in exports.by_ref() {
            let v = match name {
                "proxy_abi_version_0_2_1" => AbiVersion::V0_2_1,
                "proxy_abi_version_0_2_0" => AbiVersion::V0_2_0,
                "proxy_abi_version_0_1_0" => AbiVersion::V0_1_0,
                _ => continue,
            };
            // Prefer the newest version a module declares.
            found = Some(match found {
                Some(AbiVersion::V0_2_1) => AbiVersion::V0_2_1,
                Some(AbiVersion::V0_2_0) if v == AbiVersion::V0_1_0 => AbiVersion::V0_2_0,
                _ => v,
            });
        }
        found
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AbiVersion::V0_1_0 => "0.1.0",
            AbiVersion::V0_2_0 => "0.2.0",
            AbiVersion::V0_2_1 => "0.2.1",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_newest_declared_abi() {
        let cases: [(&[&str], Option<AbiVersion>); 4] = [
            (
                &["proxy_abi_version_0_2_1", "malloc"],
                Some(AbiVersion::V0_2_1),
            ),
            (&["proxy_abi_version_0_2_0"], Some(AbiVersion::V0_2_0)),
            (
                &["proxy_abi_version_0_1_0", "proxy_abi_version_0_2_0"],
                Some(AbiVersion::V0_2_0),
            ),
            (&["proxy_on_request_headers"], None),
        ];
        for (exports, want) in cases {
            assert_eq!(
                AbiVersion::detect(exports.iter().copied()),
                want,
                "{exports:?}"
            );
        }
    }
}
