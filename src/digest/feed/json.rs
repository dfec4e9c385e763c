//! JSON Feed 1.0 and 1.1: an object with a `version` and `items`. Each
//! item is read and converted on its own while the array is read, so a
//! large feed is never held as one tree; a field of the wrong type is left
//! out, not an error for the whole feed.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::NotAFeed;
use super::entry::{Builder, RawEntry};
use super::text::{FieldText, shown};

pub fn read(text: &str, feed: &mut Builder) -> Result<(), NotAFeed> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let top = deserializer
        .deserialize_map(Top { feed: &mut *feed })
        .and_then(|top| deserializer.end().map(|()| top))
        .map_err(|error| match error.classify() {
            serde_json::error::Category::Data => NotAFeed::Other("JSON, but not a JSON Feed object".to_owned()),
            _ => NotAFeed::Json {
                message: shown(&error.to_string(), 120),
            },
        })?;
    let versioned = top
        .version
        .as_deref()
        .is_some_and(|v| v.starts_with("https://jsonfeed.org/version/"));
    if !versioned && !top.items {
        return Err(NotAFeed::Other(
            "JSON without a JSON Feed `version` or `items`".to_owned(),
        ));
    }
    Ok(())
}

/// What the top level says about itself.
struct TopFields {
    version: Option<String>,
    items: bool,
}

struct Top<'b> {
    feed: &'b mut Builder,
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = TopFields;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON Feed object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopFields, A::Error> {
        let mut top = TopFields {
            version: None,
            items: false,
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" => top.version = string(map.next_value()?),
                "title" => {
                    let title = string(map.next_value()?).map(FieldText::plain);
                    RawEntry::first(&mut self.feed.meta.title, title);
                }
                "home_page_url" => RawEntry::first(&mut self.feed.meta.link, string(map.next_value()?)),
                "language" => RawEntry::first(&mut self.feed.meta.language, string(map.next_value()?)),
                "items" => {
                    top.items = map.next_value_seed(Items { feed: &mut *self.feed })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(top)
    }
}

/// The `items` array, each converted as it is read; `false` when it is not
/// an array.
struct Items<'b> {
    feed: &'b mut Builder,
}

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Items<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<bool, A::Error> {
        while let Some(item) = items.next_element::<Value>()? {
            let entry = match item {
                Value::Object(item) => entry(item),
                _ => RawEntry::default(),
            };
            self.feed.entry(entry);
        }
        Ok(true)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
}

fn entry(mut item: Map<String, Value>) -> RawEntry {
    let mut take = |key: &str| item.remove(key).and_then(string);
    let html = take("content_html").filter(|h| !h.trim().is_empty());
    let text = take("content_text");
    RawEntry {
        id: take("id"),
        link: take("url"),
        title: take("title").map(FieldText::plain),
        excerpt: take("summary").map(FieldText::plain),
        content: html.map(FieldText::html).or(text.map(FieldText::plain)),
        published: take("date_published"),
        updated: take("date_modified"),
        language: take("language"),
        author: author(item.remove("authors"), item.remove("author")),
        ..RawEntry::default()
    }
}

/// A string, or a number written as one (ids: `"id": 123` is common).
fn string(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// JSON Feed 1.1's `authors` (the first with a name), else 1.0's `author`.
fn author(authors: Option<Value>, author: Option<Value>) -> Option<String> {
    let name = |person: Value| match person {
        Value::Object(mut person) => person.remove("name").and_then(string),
        _ => None,
    };
    let first = match authors {
        Some(Value::Array(people)) => people.into_iter().find_map(name),
        _ => None,
    };
    first.or_else(|| author.and_then(name))
}
