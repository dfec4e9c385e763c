//! Reading `application/x-www-form-urlencoded` bodies strictly: a body that
//! is too large, of another type, or not UTF-8 is refused with a reason,
//! never decoded lossily into replacement characters. Handlers take a
//! public form as a [`Form`] argument (staff forms as a
//! [`super::admin::session::StaffForm`], which also checks the CSRF token).

use std::collections::HashMap;
use std::ops::Deref;
use std::time::Duration;

use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest, dev, web};
use futures_util::future::LocalBoxFuture;
use futures_util::{FutureExt, Stream, StreamExt};

use crate::web::AppState;
use crate::web::error::{FormError, PageError};

/// How long a request body may take to arrive once the handler starts
/// reading it (`server.body_timeout_seconds`), kept in the app's data. A
/// client sending a byte now and then would otherwise hold a connection and
/// a handler for as long as it liked.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

impl Default for BodyTimeout {
    fn default() -> Self {
        Self(Duration::from_secs(10))
    }
}

/// The fields of a form; [`Fields::get`] gives a field's first value,
/// [`Fields::all`] each value of a field given several times (checkboxes
/// sharing a name).
#[derive(Debug, Default)]
pub struct Fields(HashMap<String, Vec<String>>);

impl Fields {
    pub fn get(&self, name: &str) -> &str {
        self.0
            .get(name)
            .and_then(|values| values.first())
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Every value of the field, in the order given.
    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0.get(name).into_iter().flatten().map(String::as_str)
    }
}

/// A public page's form, read as [`read`] does with at most
/// `server.max_body_bytes`; a handler that takes one is called only with
/// a form that could be read.
#[derive(Debug)]
pub struct Form(Fields);

impl Deref for Form {
    type Target = Fields;

    fn deref(&self) -> &Fields {
        &self.0
    }
}

impl FromRequest for Form {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, payload: &mut dev::Payload) -> Self::Future {
        let (req, payload) = (req.clone(), payload.take());
        async move {
            let limit = req
                .app_data::<web::Data<AppState>>()
                .expect("AppState is registered with the app")
                .max_body_bytes;
            Ok(Form(read(&req, payload, limit).await?))
        }
        .boxed_local()
    }
}

/// A body as the request's stream of chunks.
pub trait Body: Stream<Item = Result<Bytes, PayloadError>> + Unpin {}

impl<T: Stream<Item = Result<Bytes, PayloadError>> + Unpin> Body for T {}

/// Reads a urlencoded body of at most `limit` bytes.
pub async fn read(req: &HttpRequest, payload: impl Body, limit: usize) -> Result<Fields, FormError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(FormError::WrongContentType);
    }
    parse(&read_body(req, payload, limit).await?)
}

/// Reads a body of any type, refusing more than `limit` bytes and a body
/// that does not arrive within the [`BodyTimeout`].
pub async fn read_body(req: &HttpRequest, payload: impl Body, limit: usize) -> Result<BytesMut, FormError> {
    let BodyTimeout(timeout) = req.app_data::<BodyTimeout>().copied().unwrap_or_default();
    tokio::time::timeout(timeout, read_body_untimed(req, payload, limit))
        .await
        .unwrap_or(Err(FormError::TimedOut(timeout.as_secs())))
}

async fn read_body_untimed(req: &HttpRequest, mut payload: impl Body, limit: usize) -> Result<BytesMut, FormError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(FormError::TooLarge(limit));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk: Bytes = chunk.map_err(|_| FormError::Incomplete)?;
        if body.len() + chunk.len() > limit {
            return Err(FormError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Decodes `a=1&b=two+words`; `+` is a space and `%XX` a byte, and the
/// decoded bytes must be UTF-8.
pub fn parse(body: &[u8]) -> Result<Fields, FormError> {
    let mut fields = HashMap::new();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let key = decode(key)?;
        let value = decode(value)?;
        fields.entry(key).or_insert_with(Vec::new).push(value);
    }
    Ok(Fields(fields))
}

fn decode(raw: &[u8]) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => match (raw.get(i + 1).and_then(hex), raw.get(i + 2).and_then(hex)) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                // A stray `%` is kept as it is, as browsers do.
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8)
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_percent_and_utf8() {
        let f = parse(b"name=Zo%C3%AB+Smith&email=a%2Bb%40example.com&empty=&flag").unwrap();
        assert_eq!(f.get("name"), "Zoë Smith");
        assert_eq!(f.get("email"), "a+b@example.com");
        assert_eq!(f.get("empty"), "");
        assert_eq!(f.get("flag"), "");
        assert_eq!(f.get("missing"), "");
    }

    #[test]
    fn keeps_the_first_of_repeated_fields_and_stray_percents() {
        let f = parse(b"a=1&a=2&b=100%&c=%zz").unwrap();
        assert_eq!(f.get("a"), "1");
        assert_eq!(f.get("b"), "100%");
        assert_eq!(f.get("c"), "%zz");
    }

    #[test]
    fn refuses_bytes_that_are_not_utf8() {
        assert_eq!(parse(b"name=%FF%FE").unwrap_err(), FormError::NotUtf8);
        assert_eq!(parse(b"name=\xff").unwrap_err(), FormError::NotUtf8);
    }
}
