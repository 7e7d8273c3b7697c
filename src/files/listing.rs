//! A virtual key's list of files or batches: the upstream's pages, kept to the objects the key
//! created, paged on until the caller's `limit` is met.

use std::collections::HashSet;

use serde_json::{json, Value as Json};

/// The most upstream pages one list call reads while looking for the caller's objects.
pub const MAX_PAGES: usize = 10;

/// The caller's objects gathered from the upstream's pages.
#[derive(Debug)]
pub struct Collect {
    owned: HashSet<String>,
    want: usize,
    data: Vec<Json>,
    more: bool,
    pages: usize,
}

impl Collect {
    /// Gathers up to `want` objects whose ids are in `owned`.
    pub fn new(owned: HashSet<String>, want: usize) -> Self {
        Self {
            owned,
            want: want.max(1),
            data: Vec::new(),
            more: false,
            pages: 0,
        }
    }

    /// Takes one upstream list page; the cursor (`after`) of the next page to read, when more
    /// are needed. `Err` when the page is not a list.
    pub fn take(&mut self, page: &Json) -> Result<Option<String>, &'static str> {
        let items = page
            .get("data")
            .and_then(Json::as_array)
            .ok_or("a list reply without `data`")?;
        self.pages += 1;
        let upstream_more = page.get("has_more").and_then(Json::as_bool) == Some(true);
        for item in items {
            let Some(id) = item.get("id").and_then(Json::as_str) else {
                continue;
            };
            if !self.owned.contains(id) {
                continue;
            }
            if self.data.len() == self.want {
                // One more than asked for exists: the caller's next page starts after the last.
                self.more = true;
                return Ok(None);
            }
            self.data.push(item.clone());
        }
        let cursor = items
            .last()
            .and_then(|i| i.get("id"))
            .and_then(Json::as_str);
        match cursor {
            Some(after) if upstream_more && self.data.len() < self.want => {
                if self.pages >= MAX_PAGES {
                    self.more = true;
                    return Ok(None);
                }
                Ok(Some(after.to_owned()))
            }
            _ => {
                self.more = upstream_more;
                Ok(None)
            }
        }
    }

    /// The list as OpenAI shapes it.
    pub fn finish(self) -> Json {
        let id = |i: Option<&Json>| i.and_then(|v| v.get("id")).cloned().unwrap_or(Json::Null);
        json!({
            "object": "list",
            "first_id": id(self.data.first()),
            "last_id": id(self.data.last()),
            "has_more": self.more,
            "data": self.data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(ids: &[&str], has_more: bool) -> Json {
        let data: Vec<Json> = ids
            .iter()
            .map(|i| json!({"id": i, "object": "file"}))
            .collect();
        json!({"object": "list", "data": data, "has_more": has_more})
    }

    fn owned(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    fn ids(list: &Json) -> Vec<&str> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn only_the_callers_objects_are_listed() {
        let mut c = Collect::new(owned(&["b", "d"]), 100);
        assert_eq!(c.take(&page(&["a", "b", "c", "d"], false)), Ok(None));
        let list = c.finish();
        assert_eq!(ids(&list), ["b", "d"]);
        assert_eq!(list["first_id"], "b");
        assert_eq!(list["last_id"], "d");
        assert_eq!(list["has_more"], false);
    }

    #[test]
    fn pages_are_read_on_until_the_limit_is_met_and_an_extra_one_means_more() {
        let mut c = Collect::new(owned(&["b", "d", "e"]), 2);
        assert_eq!(c.take(&page(&["a", "b"], true)), Ok(Some("b".into())));
        assert_eq!(c.take(&page(&["c", "d", "e"], false)), Ok(None));
        let list = c.finish();
        assert_eq!(ids(&list), ["b", "d"]);
        assert_eq!(list["has_more"], true, "e is still to come after d");
    }

    #[test]
    fn reading_stops_after_max_pages_saying_there_is_more() {
        let mut c = Collect::new(owned(&["z"]), 1);
        for n in 1..MAX_PAGES {
            assert_eq!(
                c.take(&page(&["x"], true)),
                Ok(Some("x".into())),
                "page {n}"
            );
        }
        assert_eq!(c.take(&page(&["x"], true)), Ok(None));
        let list = c.finish();
        assert_eq!(list["has_more"], true);
        assert_eq!(list["first_id"], Json::Null);
    }

    #[test]
    fn a_reply_that_is_not_a_list_is_an_error() {
        let mut c = Collect::new(owned(&[]), 1);
        assert!(c.take(&json!({"error": "x"})).is_err());
    }
}
