//! Syntax rules for roles, label keys and values, and `KEY=VALUE` env items.

/// Whether `text` is `[a-z0-9]([-a-z0-9.]*[a-z0-9])?` (with `upper` also `A-Z`, and `_`
/// allowed inside when `underscore`).
fn is_name(text: &str, upper: bool, underscore: bool) -> bool {
    let allowed_edge =
        |c: char| c.is_ascii_digit() || c.is_ascii_lowercase() || (upper && c.is_ascii_uppercase());
    let allowed_inner =
        |c: char| allowed_edge(c) || c == '-' || c == '.' || (underscore && c == '_');
    let (Some(first), Some(last)) = (text.chars().next(), text.chars().last()) else {
        return false;
    };
    allowed_edge(first) && allowed_edge(last) && text.chars().all(allowed_inner)
}

/// A host role: it becomes the node label `node-role.kubernetes.io/<role>`, so it must be a
/// label name in lower case: `[a-z0-9]([-a-z0-9.]*[a-z0-9])?`, at most 63 characters.
pub(crate) fn check_role(role: &str) -> Result<(), String> {
    if role.is_empty() {
        return Err("empty role: use master, node or a custom role name".to_owned());
    }
    if role.len() > 63 || !is_name(role, false, false) {
        return Err(format!(
            "{role:?} is not a role name: use lower-case letters, digits, '-' and '.', \
             starting and ending with a letter or digit, at most 63 characters"
        ));
    }
    Ok(())
}

/// A Kubernetes label key: an optional DNS-subdomain prefix and `/`, then a name of at most
/// 63 characters `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
pub(crate) fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let labels_ok = prefix
            .split('.')
            .all(|label| label.len() <= 63 && is_name(label, false, false) && !label.contains('.'));
        if prefix.is_empty() || prefix.len() > 253 || !labels_ok {
            return Err(format!(
                "{key:?}: the prefix {prefix:?} is not a DNS subdomain (lower-case letters, \
                 digits, '-' and '.', at most 253 characters)"
            ));
        }
    }
    if name.is_empty() || name.len() > 63 || !is_name(name, true, true) {
        return Err(format!(
            "{key:?} is not a label key: the name part must be 1 to 63 letters, digits, '-', \
             '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A Kubernetes label value: empty, or at most 63 characters
/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
pub(crate) fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || (value.len() <= 63 && is_name(value, true, true)) {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a label value: use at most 63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
        ))
    }
}

/// A `KEY=VALUE` env item (the value may be empty or hold more `=`).
pub(crate) fn parse_env_item(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        Some(_) => Err(format!("{text:?} has no key before '=': write KEY=VALUE")),
        None => Err(format!("{text:?} has no '=': write KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        for good in ["master", "node", "gpu-node", "a", "edge.v2", "0"] {
            assert!(check_role(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Master",
            "-node",
            "node-",
            "gpu_node",
            "a b",
            &"x".repeat(64),
        ] {
            assert!(check_role(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_role("").unwrap_err(),
            "empty role: use master, node or a custom role name"
        );
    }

    #[test]
    fn label_keys_and_values() {
        for good in [
            "app",
            "node-role.kubernetes.io/master",
            "example.com/My_Key.1",
            "A",
        ] {
            assert!(check_label_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/name",
            "Example.com/x",
            "a..b/x",
            "x/",
            "-x",
            "x_",
            &"k".repeat(64),
        ] {
            assert!(check_label_key(bad).is_err(), "{bad}");
        }
        for good in ["", "v1", "Some_Value.2"] {
            assert!(check_label_value(good).is_ok(), "{good}");
        }
        for bad in ["-v", "a b", "v/1", &"v".repeat(64)] {
            assert!(check_label_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_items() {
        assert_eq!(
            parse_env_item("A=b=c"),
            Ok(("A".to_owned(), "b=c".to_owned()))
        );
        assert_eq!(parse_env_item("A="), Ok(("A".to_owned(), String::new())));
        assert_eq!(
            parse_env_item("A").unwrap_err(),
            "\"A\" has no '=': write KEY=VALUE"
        );
        assert_eq!(
            parse_env_item("=x").unwrap_err(),
            "\"=x\" has no key before '=': write KEY=VALUE"
        );
    }
}
