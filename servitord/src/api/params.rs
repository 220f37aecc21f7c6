//! Query parameters, read as the old tool read them: an empty value counts as absent,
//! the first of repeated values wins, `+` is a space and `%XX` is decoded.

use percent_encoding::percent_decode;

use super::error::ApiError;

/// Most parameters one request may carry: enough for any input form.
const MAX_PARAMS: usize = 1000;

/// The parameters of one request's query string, in the order given.
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes a query string (`None`: there is none). Fails with a `400` on a name or
    /// value that is not UTF-8 once decoded, and on more than 1000 parameters.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut pairs = Vec::new();
        for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = decode(name)
                .map_err(|()| ApiError::BadRequest("a parameter name is not valid UTF-8".into()))?;
            let value = decode(value).map_err(|()| {
                ApiError::BadRequest(format!("parameter {name} is not valid UTF-8"))
            })?;
            if !value.is_empty() {
                pairs.push((name, value));
            }
            if pairs.len() > MAX_PARAMS {
                return Err(ApiError::BadRequest(format!(
                    "at most {MAX_PARAMS} parameters are accepted"
                )));
            }
        }
        Ok(Self { pairs })
    }

    /// The first non-empty value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Like `get`, but a missing parameter is a `400`.
    pub fn require(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::BadRequest(format!("missing parameter {name}")))
    }

    /// `(KEY, value)` of every parameter named `<prefix>KEY`, first value per key.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.pairs
            .iter()
            .enumerate()
            .filter_map(move |(at, (name, value))| {
                let key = name.strip_prefix(prefix)?;
                let first = !self.pairs[..at].iter().any(|(n, _)| n == name);
                first.then_some((key, value.as_str()))
            })
    }
}

fn decode(text: &str) -> Result<String, ()> {
    let spaced = text.replace('+', " ");
    percent_decode(spaced.as_bytes())
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_the_old_tool() {
        let params = Params::parse(Some("job_id=&job_id=a%2Fb&job_id=c&x=1+2&flag&input_value_A=1&input_value_A=2&input_value_B=%C3%BC")).unwrap();
        assert_eq!(params.get("job_id"), Some("a/b"));
        assert_eq!(params.get("x"), Some("1 2"));
        assert_eq!(params.get("flag"), None);
        let inputs: Vec<_> = params.with_prefix("input_value_").collect();
        assert_eq!(inputs, [("A", "1"), ("B", "ü")]);
        assert!(Params::parse(None).unwrap().require("job_id").is_err());
    }

    #[test]
    fn refuses_bad_encoding() {
        assert!(Params::parse(Some("job_id=%FF")).is_err());
        assert!(Params::parse(Some("%C3=1")).is_err());
        // Stray percent signs are taken literally, as Python does.
        assert_eq!(
            Params::parse(Some("a=100%")).unwrap().get("a"),
            Some("100%")
        );
        let many = vec!["a=1"; MAX_PARAMS + 1].join("&");
        assert!(Params::parse(Some(&many)).is_err());
    }
}
