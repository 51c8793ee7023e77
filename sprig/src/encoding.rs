//! Sprig's encodings, hashes and crypto functions.
//!
//! Functions that are random in Go (`uuidv4`, `bcrypt`, `htpasswd`, `randBytes`,
//! `genPrivateKey`, `genCA`, `genSelfSignedCert`, `genSignedCert` and their `WithKey`
//! forms) draw from [`crate::random`] instead and return stand-ins of the right shape: a
//! `$2a$10$` hash of bcrypt's length, PEM blocks holding random bytes rather than real keys
//! and certificates. `derivePassword`, `encryptAES` and `decryptAES` fail when called.

use std::fmt::Write as _;
use std::rc::Rc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gotemplate::{Functions, Object, Runtime, Value};
use sha1::Digest as _;

use crate::args::{Outcome, fixed, int, list, string, strval, wrong_type};
use crate::random;

pub(crate) fn register(functions: &mut Functions) {
    functions.insert("b64enc", |_, args| {
        text_function("b64enc", args, |text| Ok(STANDARD.encode(text)))
    });
    functions.insert("b64dec", |_, args| {
        text_function("b64dec", args, |text| {
            Ok(base64_decode(text).unwrap_or_else(|error| error))
        })
    });
    functions.insert("b32enc", |_, args| {
        text_function("b32enc", args, |text| Ok(base32_encode(text.as_bytes())))
    });
    functions.insert("b32dec", |_, args| {
        text_function("b32dec", args, |text| {
            Ok(base32_decode(text).unwrap_or_else(|error| error))
        })
    });
    functions.insert("sha1sum", |_, args| {
        text_function("sha1sum", args, |text| Ok(hex(&sha1::Sha1::digest(text))))
    });
    functions.insert("sha256sum", |_, args| {
        text_function("sha256sum", args, |text| {
            Ok(hex(&sha2::Sha256::digest(text)))
        })
    });
    functions.insert("sha512sum", |_, args| {
        text_function("sha512sum", args, |text| {
            Ok(hex(&sha2::Sha512::digest(text)))
        })
    });
    functions.insert("adler32sum", |_, args| {
        text_function("adler32sum", args, |text| {
            Ok(adler32(text.as_bytes()).to_string())
        })
    });
    functions.insert("bcrypt", |_, args| {
        text_function("bcrypt", args, |_| Ok(bcrypt_stand_in()))
    });
    functions.insert("htpasswd", htpasswd);
    functions.insert("uuidv4", |_, args| {
        fixed::<0>("uuidv4", args)?;
        Ok(uuid_v4().into())
    });
    functions.insert("randBytes", |_, args| {
        let [count] = fixed("randBytes", args)?;
        let count = usize::try_from(int(count)?)
            .map_err(|_| "runtime error: makeslice: len out of range".to_string())?;
        Ok(STANDARD.encode(random::bytes(count)).into())
    });
    functions.insert("genPrivateKey", |_, args| {
        text_function("genPrivateKey", args, |kind| Ok(private_key(kind)))
    });
    functions.insert("genCA", |_, args| {
        certificate("genCA", args, CertificateKind::Authority, false)
    });
    functions.insert("genCAWithKey", |_, args| {
        certificate("genCAWithKey", args, CertificateKind::Authority, true)
    });
    functions.insert("genSelfSignedCert", |_, args| {
        certificate(
            "genSelfSignedCert",
            args,
            CertificateKind::SelfSigned,
            false,
        )
    });
    functions.insert("genSelfSignedCertWithKey", |_, args| {
        certificate(
            "genSelfSignedCertWithKey",
            args,
            CertificateKind::SelfSigned,
            true,
        )
    });
    functions.insert("genSignedCert", |_, args| {
        certificate("genSignedCert", args, CertificateKind::Signed, false)
    });
    functions.insert("genSignedCertWithKey", |_, args| {
        certificate("genSignedCertWithKey", args, CertificateKind::Signed, true)
    });
    functions.insert("buildCustomCert", build_custom_cert);
    functions.insert("derivePassword", |_, _| Err(unsupported("derivePassword")));
    functions.insert("encryptAES", |_, _| Err(unsupported("encryptAES")));
    functions.insert("decryptAES", |_, _| Err(unsupported("decryptAES")));
}

fn unsupported(name: &str) -> String {
    format!("{name} is not supported by this implementation")
}

fn text_function(
    name: &str,
    args: &[Value],
    operation: impl FnOnce(&str) -> Result<String, String>,
) -> Outcome {
    let [text] = fixed(name, args)?;
    Ok(operation(string(text)?)?.into())
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// Go's `base64.StdEncoding.DecodeString` (newlines ignored), with Go's error text.
fn base64_decode(text: &str) -> Result<String, String> {
    let cleaned: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    STANDARD
        .decode(&cleaned)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|error| {
            let offset = match error {
                base64::DecodeError::InvalidByte(offset, _)
                | base64::DecodeError::InvalidLastSymbol(offset, _) => offset,
                base64::DecodeError::InvalidLength(length) => length - length % 4,
                base64::DecodeError::InvalidPadding => cleaned.len().saturating_sub(1),
            };
            format!("illegal base64 data at input byte {offset}")
        })
}

const BASE32_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Go's `base32.StdEncoding.EncodeToString`.
fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(5) {
        let mut block = [0_u8; 5];
        block[..chunk.len()].copy_from_slice(chunk);
        let bits = block
            .iter()
            .fold(0_u64, |bits, byte| (bits << 8) | u64::from(*byte));
        let symbols = (chunk.len() * 8).div_ceil(5);
        for index in 0..8 {
            if index < symbols {
                out.push(char::from(
                    BASE32_ALPHABET[usize::try_from((bits >> (35 - index * 5)) & 31).unwrap_or(0)],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Go's `base32.StdEncoding.DecodeString` (newlines ignored), with Go's error text.
fn base32_decode(text: &str) -> Result<String, String> {
    let cleaned: Vec<u8> = text
        .bytes()
        .filter(|byte| *byte != b'\r' && *byte != b'\n')
        .collect();
    let illegal = |offset: usize| format!("illegal base32 data at input byte {offset}");
    if !cleaned.len().is_multiple_of(8) {
        return Err(illegal(cleaned.len() - cleaned.len() % 8));
    }
    let mut out = Vec::new();
    for (block_index, block) in cleaned.chunks(8).enumerate() {
        let padding = block.iter().rev().take_while(|byte| **byte == b'=').count();
        let data = &block[..8 - padding];
        let length = match data.len() {
            8 => 5,
            7 => 4,
            5 => 3,
            4 => 2,
            2 => 1,
            _ => return Err(illegal(block_index * 8 + data.len())),
        };
        if padding > 0 && block_index + 1 != cleaned.len() / 8 {
            return Err(illegal(block_index * 8 + data.len()));
        }
        let mut bits = 0_u64;
        for (index, symbol) in data.iter().enumerate() {
            let value = BASE32_ALPHABET
                .iter()
                .position(|candidate| candidate == symbol)
                .ok_or_else(|| illegal(block_index * 8 + index))?;
            bits |= (value as u64) << (35 - index * 5);
        }
        out.extend_from_slice(&bits.to_be_bytes()[3..3 + length]);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Adler-32 (`hash/adler32`).
fn adler32(bytes: &[u8]) -> u32 {
    const MODULUS: u32 = 65_521;
    let (mut low, mut high) = (1_u32, 0_u32);
    for byte in bytes {
        low = (low + u32::from(*byte)) % MODULUS;
        high = (high + low) % MODULUS;
    }
    (high << 16) | low
}

/// A bcrypt-shaped hash (`$2a$10$` and 53 characters) from the deterministic source.
fn bcrypt_stand_in() -> String {
    const ALPHABET: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = (0..53)
        .map(|_| char::from(ALPHABET[random::below(ALPHABET.len())]))
        .collect();
    format!("$2a$10${tail}")
}

fn htpasswd(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [user, password, algorithm] = fixed("htpasswd", args)?;
    let (user, password, algorithm) = (string(user)?, string(password)?, string(algorithm)?);
    if user.contains(':') {
        return Ok(format!("invalid username: {user}").into());
    }
    Ok(if algorithm == "sha" {
        format!(
            "{user}:{{SHA}}{}",
            STANDARD.encode(sha1::Sha1::digest(password))
        )
    } else {
        format!("{user}:{}", bcrypt_stand_in())
    }
    .into())
}

/// A version 4 UUID from the deterministic source.
fn uuid_v4() -> String {
    let mut bytes = random::bytes(16);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let text = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &text[..8],
        &text[8..12],
        &text[12..16],
        &text[16..20],
        &text[20..]
    )
}

/// A PEM block of `label` around `size` deterministic random bytes.
fn pem(label: &str, size: usize) -> String {
    let body = STANDARD.encode(random::bytes(size));
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

fn private_key(kind: &str) -> String {
    match kind {
        "" | "rsa" => pem("RSA PRIVATE KEY", 2349),
        "dsa" => pem("DSA PRIVATE KEY", 860),
        "ecdsa" => pem("EC PRIVATE KEY", 121),
        "ed25519" => pem("PRIVATE KEY", 48),
        other => format!("Unknown type {other}"),
    }
}

/// Sprig's `certificate` struct.
struct Certificate {
    cert: String,
    key: String,
}

impl Object for Certificate {
    fn type_name(&self) -> &'static str {
        "sprig.certificate"
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Cert" => Some(self.cert.as_str().into()),
            "Key" => Some(self.key.as_str().into()),
            _ => None,
        }
    }

    fn call_method(&self, _: &str, _: &[Value]) -> Option<Result<Value, String>> {
        None
    }

    fn display(&self) -> String {
        format!("{{{} {}}}", self.cert, self.key)
    }

    fn to_data(&self) -> Value {
        Value::map(
            [
                ("Cert".to_string(), self.cert.as_str().into()),
                ("Key".to_string(), self.key.as_str().into()),
            ]
            .into(),
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CertificateKind {
    Authority,
    SelfSigned,
    Signed,
}

fn certificate_value(cert: String, key: String) -> Value {
    Value::Object(Rc::new(Certificate { cert, key }))
}

/// Checks Sprig's `ips` and `alternateDNS` lists.
fn check_names(ips: &Value, names: &Value) -> Result<(), String> {
    for ip in list(ips)? {
        let text = ip
            .as_str()
            .ok_or_else(|| format!("error parsing ip: {} is not a string", ip.to_go_string()))?;
        text.parse::<std::net::IpAddr>()
            .map_err(|_| format!("error parsing ip: {text}"))?;
    }
    for name in list(names)? {
        if name.as_str().is_none() {
            return Err(format!(
                "error processing alternate dns name: {} is not a string",
                name.to_go_string()
            ));
        }
    }
    Ok(())
}

fn certificate(name: &str, args: &[Value], kind: CertificateKind, with_key: bool) -> Outcome {
    let base = match kind {
        CertificateKind::Authority => 2,
        CertificateKind::SelfSigned => 4,
        CertificateKind::Signed => 5,
    };
    let expected = base + usize::from(with_key);
    if args.len() != expected {
        return Err(format!(
            "wrong number of args for {name}: want {expected} got {}",
            args.len()
        ));
    }
    string(&args[0])?;
    if kind == CertificateKind::Authority {
        int(&args[1])?;
    } else {
        check_names(&args[1], &args[2])?;
        int(&args[3])?;
    }
    if kind == CertificateKind::Signed {
        match &args[4] {
            Value::Object(object) if object.type_name() == "sprig.certificate" => {}
            other => return Err(wrong_type("sprig.certificate", other)),
        }
    }
    let key = if with_key {
        let key = string(&args[expected - 1])?;
        if !key.contains("-----BEGIN") {
            return Err("parsing private key: no PEM data in input".into());
        }
        key.to_string()
    } else {
        private_key("rsa")
    };
    Ok(certificate_value(pem("CERTIFICATE", 800), key))
}

fn build_custom_cert(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [cert, key] = fixed("buildCustomCert", args)?;
    let (cert, key) = (string(cert)?, string(key)?);
    let cert = STANDARD
        .decode(cert)
        .map_err(|_| "unable to decode base64 certificate".to_string())?;
    let key = STANDARD
        .decode(key)
        .map_err(|_| "unable to decode base64 private key".to_string())?;
    Ok(certificate_value(
        strval(&Value::Bytes(cert.into())),
        strval(&Value::Bytes(key.into())),
    ))
}
