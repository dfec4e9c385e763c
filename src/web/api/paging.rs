//! Cursor paging, the same for every list of the API: a `limit` within the
//! list's bounds and a `cursor` (the last key of the page before) become a
//! [`Paging`] at the edge, the list reads one row more than the page holds,
//! and [`Paging::page`] cuts it off and names the next cursor.

use super::problem::{Kind, Problem};

/// The page a request asked for: how many rows, after which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging<K> {
    limit: u16,
    /// The key the page starts after (`None`: from the start).
    pub after: Option<K>,
}

/// A list's page sizes: what it gives unasked, and the most it gives.
#[derive(Debug, Clone, Copy)]
pub struct PageSizes {
    pub default: u16,
    pub max: u16,
}

impl<K> Paging<K> {
    /// Reads `limit` (1 to `sizes.max`; `sizes.default` when absent) and
    /// `cursor` (a key `parse_key` reads); a bad one is a 400 naming it.
    pub fn parse(
        limit: Option<u16>,
        cursor: Option<&str>,
        sizes: PageSizes,
        parse_key: impl FnOnce(&str) -> Option<K>,
    ) -> Result<Self, Problem> {
        let invalid = |what: &str| Problem::new(Kind::InvalidParameters).reason(what);
        let limit = limit.unwrap_or(sizes.default);
        if !(1..=sizes.max).contains(&limit) {
            return Err(invalid("limit"));
        }
        let after = match cursor {
            None => None,
            Some(raw) => Some(parse_key(raw).ok_or_else(|| invalid("cursor"))?),
        };
        Ok(Self { limit, after })
    }

    /// How many rows to read: one more than the page holds, which tells
    /// whether there is a next page.
    pub fn rows_to_read(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// The page of `rows` (read with [`Self::rows_to_read`]), and the cursor
    /// of the next page (the last row's key), if there is one.
    pub fn page<T>(&self, mut rows: Vec<T>, key: impl FnOnce(&T) -> String) -> (Vec<T>, Option<String>) {
        let limit = usize::from(self.limit);
        if rows.len() <= limit {
            return (rows, None);
        }
        rows.truncate(limit);
        let next = rows.last().map(key);
        (rows, next)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;
    use actix_web::http::StatusCode;

    use super::*;

    const SIZES: PageSizes = PageSizes { default: 2, max: 3 };

    fn number(raw: &str) -> Option<u32> {
        raw.parse().ok()
    }

    #[test]
    fn limit_and_cursor_are_read_within_the_lists_bounds() {
        let paging = Paging::parse(None, None, SIZES, number).unwrap();
        assert_eq!((paging.rows_to_read(), paging.after), (3, None));
        let paging = Paging::parse(Some(3), Some("7"), SIZES, number).unwrap();
        assert_eq!((paging.rows_to_read(), paging.after), (4, Some(7)));
        for (limit, cursor) in [(Some(0), None), (Some(4), None), (None, Some("seven"))] {
            let refused = Paging::parse(limit, cursor, SIZES, number).unwrap_err();
            assert_eq!(refused.status_code(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn the_extra_row_is_cut_off_and_names_the_next_page() {
        let paging = Paging::parse(Some(2), None, SIZES, number).unwrap();
        assert_eq!(
            paging.page(vec![1, 2, 3], u32::to_string),
            (vec![1, 2], Some("2".to_owned()))
        );
        assert_eq!(paging.page(vec![1, 2], u32::to_string), (vec![1, 2], None));
        assert_eq!(paging.page(Vec::<u32>::new(), u32::to_string), (vec![], None));
    }
}
