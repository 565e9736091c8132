//! Where the gateway is reached, as agencies and participants sign it:
//! the configured public URL, never a client's `Host` header.

/// `scheme://authority`, parsed once from the public URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    authority: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("public url {0:?} has no scheme (write it as https://host or http://host:port)")]
pub struct NoScheme(pub String);

impl Origin {
    pub fn parse(public_url: &str) -> Result<Self, NoScheme> {
        let (scheme, authority) = public_url
            .split_once("://")
            .ok_or_else(|| NoScheme(public_url.to_string()))?;
        Ok(Self {
            scheme: scheme.to_string(),
            authority: authority.trim_end_matches('/').to_string(),
        })
    }

    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Whether browsers reach it over TLS (the cookie is then `Secure`).
    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_the_scheme_and_authority_without_a_trailing_slash() {
        let o = Origin::parse("https://gw.example:8443/").unwrap();
        assert_eq!(o.to_string(), "https://gw.example:8443");
        assert_eq!((o.scheme(), o.authority()), ("https", "gw.example:8443"));
        assert!(o.is_https());
        assert_eq!(
            Origin::parse("gw.example"),
            Err(NoScheme("gw.example".into()))
        );
    }
}
