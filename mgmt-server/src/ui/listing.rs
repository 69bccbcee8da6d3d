//! Search and paging of the list pages, on the server: `?q=` keeps the rows whose text
//! contains the words (any case), `?page=` shows [`PAGE_SIZE`] rows at a time, and
//! `?edit=` opens an object's edit form on the same page.

use serde::Deserialize;
use uuid::Uuid;

/// Rows per page, as FMC's tables.
pub(crate) const PAGE_SIZE: usize = 25;

/// The query string of a list page.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    pub q: String,
    /// 1-based; out-of-range pages show the last one.
    #[serde(default)]
    pub page: Option<usize>,
    /// The object whose edit form is open.
    #[serde(default)]
    pub edit: Option<Uuid>,
}

/// Where a list page is, for its search box and its Previous/Next links.
#[derive(Debug, Clone)]
pub(crate) struct Pager {
    path: &'static str,
    /// The query parameters every link keeps (the search, a page's filters).
    kept: Vec<(&'static str, String)>,
    pub q: String,
    pub page: usize,
    pub pages: usize,
    /// Rows matching the search.
    pub total: usize,
    /// 1-based position of the first and last row shown (0 when none).
    pub first: usize,
    pub last: usize,
}

impl Pager {
    pub(crate) fn previous(&self) -> Option<String> {
        (self.page > 1).then(|| self.link(self.page - 1))
    }

    pub(crate) fn next(&self) -> Option<String> {
        (self.page < self.pages).then(|| self.link(self.page + 1))
    }

    fn link(&self, page: usize) -> String {
        let page = page.to_string();
        let mut pairs: Vec<(&str, &str)> = self
            .kept
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        pairs.push(("page", page.as_str()));
        let query = serde_html_form::to_string(&pairs).unwrap_or_default();
        format!("{}?{query}", self.path)
    }
}

/// The rows of `items` that match `query.q` (every word found in `text(row)`, any
/// case), cut to the asked page.
pub(crate) fn paginate<T>(
    items: Vec<T>,
    query: &ListQuery,
    path: &'static str,
    text: impl Fn(&T) -> String,
) -> (Vec<T>, Pager) {
    let q = query.q.trim().to_owned();
    let words: Vec<String> = q.split_whitespace().map(str::to_lowercase).collect();
    let matching: Vec<T> = items
        .into_iter()
        .filter(|item| {
            let haystack = text(item).to_lowercase();
            words.iter().all(|w| haystack.contains(w.as_str()))
        })
        .collect();
    let total = matching.len();
    let page = Pager::clamp(query.page, total, PAGE_SIZE);
    let shown: Vec<T> = matching
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    let kept = vec![("q", q.clone())];
    let pager = Pager::new(path, kept, q, page, PAGE_SIZE, total, shown.len());
    (shown, pager)
}

impl Pager {
    /// The page to show of `total` rows, `page_size` a page: the asked one, within range.
    pub(crate) fn clamp(asked: Option<usize>, total: usize, page_size: usize) -> usize {
        let pages = total.div_ceil(page_size).max(1);
        asked.unwrap_or(1).clamp(1, pages)
    }

    /// The pager of a list the database cut: `shown` rows of page `page`.
    pub(crate) fn new(
        path: &'static str,
        kept: Vec<(&'static str, String)>,
        q: String,
        page: usize,
        page_size: usize,
        total: usize,
        shown: usize,
    ) -> Self {
        let skip = (page - 1) * page_size;
        let (first, last) = if shown == 0 {
            (0, 0)
        } else {
            (skip + 1, skip + shown)
        };
        Self {
            path,
            kept,
            q,
            page,
            pages: total.div_ceil(page_size).max(1),
            total,
            first,
            last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("pool-{i:03}")).collect()
    }

    fn query(q: &str, page: Option<usize>) -> ListQuery {
        ListQuery {
            q: q.to_owned(),
            page,
            edit: None,
        }
    }

    #[test]
    fn sixty_rows_make_three_pages_of_at_most_twenty_five() {
        let (rows, pager) = paginate(
            names(60),
            &query("", Some(3)),
            "/objects/pools",
            String::clone,
        );
        assert_eq!(
            rows,
            vec![
                "pool-051", "pool-052", "pool-053", "pool-054", "pool-055", "pool-056", "pool-057",
                "pool-058", "pool-059", "pool-060"
            ]
        );
        assert_eq!((pager.page, pager.pages, pager.total), (3, 3, 60));
        assert_eq!((pager.first, pager.last), (51, 60));
        assert_eq!(pager.previous().as_deref(), Some("/objects/pools?page=2"));
        assert_eq!(pager.next(), None);
    }

    #[test]
    fn the_search_keeps_rows_with_every_word_in_any_case_and_links_keep_it() {
        let mut items = names(40);
        items.push("RAVPN-MultiCert-Pool".to_owned());
        let (rows, pager) = paginate(items, &query("multicert POOL", None), "/p", String::clone);
        assert_eq!(rows, vec!["RAVPN-MultiCert-Pool"]);
        assert_eq!(
            (pager.total, pager.pages, pager.first, pager.last),
            (1, 1, 1, 1)
        );
        let (_, pager) = paginate(names(60), &query("pool &", Some(1)), "/p", String::clone);
        assert_eq!(pager.total, 0, "no row has '&'");
        let (_, pager) = paginate(names(60), &query("pool", Some(1)), "/p", String::clone);
        assert_eq!(pager.next().as_deref(), Some("/p?q=pool&page=2"));
    }

    #[test]
    fn a_page_past_the_end_shows_the_last_page_and_an_empty_list_has_one_page() {
        let (rows, pager) = paginate(names(30), &query("", Some(99)), "/p", String::clone);
        assert_eq!(rows.len(), 5);
        assert_eq!(pager.page, 2);
        let (rows, pager) = paginate(
            Vec::<String>::new(),
            &query("", Some(0)),
            "/p",
            String::clone,
        );
        assert!(rows.is_empty());
        assert_eq!(
            (pager.page, pager.pages, pager.first, pager.last),
            (1, 1, 0, 0)
        );
    }
}
