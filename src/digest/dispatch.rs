//! Assembling this week's issue: its articles (published since the last
//! issue's window ended, or in the last 7 days for the first), the rendered
//! issue, and one queued delivery per confirmed reader.
//!
//! The issue is rendered once per language, and each rendering chooses
//! and orders the week's articles for its readers ([`for_language`]): the
//! articles published in its language first, then, by `digest.languages`,
//! every other one (`all`) or only those of unknown language (`reader`).
//!
//! [`dispatch`] is the one way an issue is queued: the scheduler, `gazette
//! dispatch` and the staff's "send now" all call it, and it holds the
//! dispatch lock while it works.

use chrono::{DateTime, Duration, Utc};

use std::collections::HashMap;

use crate::config::{ClickTracking, DigestLanguages, Settings};
use crate::db::Db;
use crate::db::articles;
use crate::db::dispatch_lock::DispatchLock;
use crate::db::issue_drafts::{self, IssueDraft};
use crate::db::issues::{self, CountedLink};
use crate::db::subscribers;
use crate::digest::render::{self, DigestArticle, DigestFrame, IssueShape, RenderError};
use crate::domain::{EditorNote, IssueWeek, RenderedIssue};
use crate::i18n::Language;
use crate::links::Links;

/// Why this week's issue could not be previewed or queued. Each message
/// carries its cause, so none is also reported as a `source` (an error
/// chain printed with `{:#}` would show it twice).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("cannot take the dispatch lock: {0}")]
    Lock(sqlx::Error),
    #[error("cannot read the issues: {0}")]
    ReadIssues(sqlx::Error),
    #[error("cannot read the articles: {0}")]
    ReadArticles(sqlx::Error),
    #[error("cannot count the subscribers: {0}")]
    CountSubscribers(sqlx::Error),
    #[error("cannot render the digest: {0}")]
    Render(RenderError),
    #[error("cannot queue the issue: {0}")]
    Queue(sqlx::Error),
}

/// This week's issue as it would go out, written nowhere.
pub struct Preview {
    pub week: IssueWeek,
    /// The week has its issue already: dispatching again does nothing.
    pub already_dispatched: bool,
    /// The week whose issue staff are shaping: this week's, or once it
    /// has gone out, next week's.
    pub draft_week: IssueWeek,
    /// What staff shaped in it so far.
    pub draft: IssueDraft,
    /// The subject `digest.subject` gives it (what staff see as the
    /// subject's default); `None` while it has no article.
    pub generated_subject: Option<String>,
    /// Articles published from here on are in it.
    pub since: DateTime<Utc>,
    /// The articles of the default language's rendering, in its order
    /// (some may not fit: see [`RenderedIssue::articles`]).
    pub articles: Vec<DigestArticle>,
    /// The default language's rendering.
    pub issue: Option<RenderedIssue>,
    pub recipients: i64,
    /// Every article the week has for any language's rendering.
    week_articles: Vec<WeekArticle>,
}

/// One of the week's articles and the language it was published in
/// (`None`: unknown).
#[derive(Debug, Clone)]
struct WeekArticle {
    language: Option<Language>,
    article: DigestArticle,
}

/// The articles of `language`'s rendering, from the week's `articles`
/// (newest first), at most `max`: those published in `language` first,
/// then, with [`DigestLanguages::All`], all the others, or with
/// [`DigestLanguages::Reader`], only those of unknown language; newest
/// first within each group.
///
/// A rendering that would hold no article at all (with `Reader`, a week
/// with nothing in its language and nothing of unknown language) holds
/// every article instead: its readers subscribed to the publication, and
/// an empty digest, or none while the others get theirs, would tell them
/// less than the stories in another language do.
fn for_language(
    articles: &[WeekArticle],
    language: Language,
    choice: DigestLanguages,
    max: usize,
) -> Vec<DigestArticle> {
    let own = articles.iter().filter(|a| a.language == Some(language));
    let others = articles.iter().filter(|a| a.language != Some(language));
    let chosen: Vec<&WeekArticle> = match choice {
        DigestLanguages::All => own.chain(others).collect(),
        DigestLanguages::Reader => own.chain(others.filter(|a| a.language.is_none())).collect(),
    };
    let chosen = if chosen.is_empty() {
        articles.iter().collect()
    } else {
        chosen
    };
    chosen.into_iter().take(max).map(|a| a.article.clone()).collect()
}

/// Builds the preview of the issue for the week of `now`: the articles
/// published since the last issue's window ended (the last 7 days for the
/// first issue), as the default language's rendering chooses and orders
/// them ([`for_language`]), capped at `digest.max_articles`.
pub async fn preview(db: &Db, settings: &Settings, now: DateTime<Utc>) -> Result<Preview, DispatchError> {
    let week = settings.schedule.issue_week(now);
    let already_dispatched = issues::exists(db, week).await.map_err(DispatchError::ReadIssues)?;
    let draft_week = if already_dispatched { week.following() } else { week };
    let draft = issue_drafts::find(db, draft_week)
        .await
        .map_err(DispatchError::ReadIssues)?;
    let last_end = issues::last_window_end(db).await.map_err(DispatchError::ReadIssues)?;
    let since = last_end.unwrap_or(now - Duration::days(7));
    let limit = i64::from(settings.digest.max_articles);
    let rows = articles::published_between(db, since, now, limit)
        .await
        .map_err(DispatchError::ReadArticles)?;
    let mut week_articles: Vec<WeekArticle> = rows
        .into_iter()
        .map(|a| WeekArticle {
            language: a.language(),
            article: DigestArticle {
                id: a.id,
                title: a.title,
                url: a.url,
                author: a.author,
                published_at: a.published_at,
                summary: a.summary,
                source_name: a.source_name,
                section: a.section,
            },
        })
        .collect();
    in_staff_order(&mut week_articles, &draft.order);
    let shape = shape_of(&draft);
    let articles = in_language(
        settings,
        &week_articles,
        settings.site.default_language,
        &draft.section_order,
    );
    let recipients = subscribers::count_receiving(db, now)
        .await
        .map_err(DispatchError::CountSubscribers)?;
    let issue = if articles.is_empty() {
        None
    } else {
        Some(render_in(
            settings,
            settings.site.default_language,
            (draft_week, &shape, None),
            now,
            &articles,
        )?)
    };
    let generated_subject = articles.first().map(|lead| {
        let shape = IssueShape::default();
        render::generated_subject(
            &frame(settings, settings.site.default_language, &shape, None),
            draft_week,
            now,
            &lead.title,
        )
    });
    Ok(Preview {
        week,
        already_dispatched,
        draft_week,
        draft,
        generated_subject,
        since,
        articles,
        issue,
        recipients,
        week_articles,
    })
}

/// Puts the week's articles (newest first) in the order staff gave them:
/// those they placed first, by their place, then the others as they were.
fn in_staff_order(articles: &mut [WeekArticle], order: &[uuid::Uuid]) {
    if order.is_empty() {
        return;
    }
    articles.sort_by_key(|a| order.iter().position(|id| *id == a.article.id).unwrap_or(usize::MAX));
}

/// What staff wrote for the issue, as rendering needs it. A note stored
/// before is as it was parsed when it was saved; one that no longer parses
/// (a rule tightened since) is left out rather than stopping the issue.
fn shape_of(draft: &IssueDraft) -> IssueShape {
    let note = EditorNote::parse(&draft.editor_note).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the editor's note does not parse; the issue goes without it");
        EditorNote::default()
    });
    IssueShape {
        subject: draft.subject.clone(),
        preheader: draft.preheader.clone(),
        note,
    }
}

/// The articles of `language`'s rendering under the settings, grouped in
/// the draft's sections.
fn in_language(
    settings: &Settings,
    week_articles: &[WeekArticle],
    language: Language,
    section_order: &[String],
) -> Vec<DigestArticle> {
    let max = usize::try_from(settings.digest.max_articles).unwrap_or(usize::MAX);
    in_sections(
        for_language(week_articles, language, settings.digest.languages, max),
        section_order,
    )
}

/// The stories grouped by section: the lead first, whatever its section;
/// then the stories without one; then each section, in `order` (names in
/// any case) and the ones `order` does not name in the order their first
/// story comes. Within a group, the stories keep their order.
fn in_sections(mut articles: Vec<DigestArticle>, order: &[String]) -> Vec<DigestArticle> {
    if articles.len() < 3 || articles.iter().all(|a| a.section.is_none()) {
        return articles;
    }
    let rest = articles.split_off(1);
    let mut unnamed: Vec<String> = Vec::new();
    for a in &rest {
        if let Some(section) = &a.section
            && !order.iter().any(|o| o.to_lowercase() == section.to_lowercase())
            && !unnamed.contains(section)
        {
            unnamed.push(section.clone());
        }
    }
    let group = |a: &DigestArticle| match &a.section {
        None => 0,
        Some(section) => match order.iter().position(|o| o.to_lowercase() == section.to_lowercase()) {
            Some(at) => 1 + at,
            None => 1 + order.len() + unnamed.iter().position(|u| u == section).unwrap_or(0),
        },
    };
    let mut rest = rest;
    rest.sort_by_key(group);
    articles.extend(rest);
    articles
}

/// What a dispatch did.
pub enum Dispatched {
    Queued {
        week: IssueWeek,
        recipients: u64,
        articles: usize,
    },
    AlreadyDispatched {
        week: IssueWeek,
    },
    NothingNew {
        week: IssueWeek,
        since: DateTime<Utc>,
    },
}

/// The digest's frame under the settings, in `language`, its story links
/// counted where `counted_links` says.
fn frame<'a>(
    settings: &'a Settings,
    language: Language,
    shape: &'a IssueShape,
    counted_links: Option<&'a HashMap<String, String>>,
) -> DigestFrame<'a> {
    DigestFrame {
        publication: settings.mail.publication_ref(),
        links: Links::new(settings.server.base_url.clone()),
        postal_address: &settings.digest.postal_address,
        subject_template: &settings.digest.subject,
        timezone: settings.schedule.timezone.0,
        language,
        shape,
        counted_links,
    }
}

/// The week's issue, as staff shaped it, with the digest's own words in
/// `language`.
fn render_in(
    settings: &Settings,
    language: Language,
    (week, shape, counted_links): (IssueWeek, &IssueShape, Option<&HashMap<String, String>>),
    now: DateTime<Utc>,
    articles: &[DigestArticle],
) -> Result<RenderedIssue, DispatchError> {
    render::render(&frame(settings, language, shape, counted_links), week, now, articles).map_err(DispatchError::Render)
}

/// With `tracking.clicks = "aggregate"`, the week's story links numbered
/// once for the whole issue (every language's rendering links a story the
/// same way), and the counted link each address gets; none otherwise.
fn counted_links(
    settings: &Settings,
    week: IssueWeek,
    articles: &[WeekArticle],
) -> (Vec<CountedLink>, HashMap<String, String>) {
    if settings.tracking.clicks == ClickTracking::Off {
        return (Vec::new(), HashMap::new());
    }
    let links = Links::new(settings.server.base_url.clone());
    let mut counted = Vec::new();
    let mut by_url = HashMap::new();
    for a in articles {
        if !by_url.contains_key(&a.article.url) {
            counted.push(CountedLink {
                url: a.article.url.clone(),
                title: a.article.title.clone(),
            });
            by_url.insert(a.article.url.clone(), links.counted_click(week, counted.len()));
        }
    }
    (counted, by_url)
}

/// Stores this week's issue and queues it for every confirmed reader, once
/// per week: a second run finds the week's issue and queues nothing.
///
/// It waits for any other dispatch to finish first, in this process or
/// another (see [`DispatchLock`]), so two never build the same week's issue
/// side by side.
pub async fn dispatch(db: &Db, settings: &Settings, now: DateTime<Utc>) -> Result<Dispatched, DispatchError> {
    let lock = DispatchLock::acquire(db).await.map_err(DispatchError::Lock)?;
    let done = queue_issue(db, settings, now).await;
    lock.release().await;
    done
}

async fn queue_issue(db: &Db, settings: &Settings, now: DateTime<Utc>) -> Result<Dispatched, DispatchError> {
    let preview = preview(db, settings, now).await?;
    let week = preview.week;
    if preview.already_dispatched {
        return Ok(Dispatched::AlreadyDispatched { week });
    }
    if preview.issue.is_none() {
        return Ok(Dispatched::NothingNew {
            week,
            since: preview.since,
        });
    }
    // Rendered once per language, each with its own choice and order of
    // the articles; each reader's copy is one of these. The preview's own
    // rendering is the staff's, whose links count nothing.
    let shape = shape_of(&preview.draft);
    let (links, counted) = counted_links(settings, week, &preview.week_articles);
    let counted = (!links.is_empty()).then_some(&counted);
    let mut renderings = Language::all()
        .map(|language| {
            let articles = in_language(settings, &preview.week_articles, language, &preview.draft.section_order);
            Ok((
                language,
                render_in(settings, language, (week, &shape, counted), now, &articles)?,
            ))
        })
        .collect::<Result<Vec<_>, DispatchError>>()?;
    let default = renderings
        .iter()
        .position(|(language, _)| *language == settings.site.default_language)
        .expect("the default language has a catalogue");
    let (_, issue) = renderings.remove(default);
    let translations = renderings;
    let queued = issues::create_and_queue(db, week, &issue, &translations, &links, (preview.since, now), now)
        .await
        .map_err(DispatchError::Queue)?;
    Ok(match queued {
        Some(queued) => Dispatched::Queued {
            week,
            recipients: queued.recipients,
            articles: issue.articles,
        },
        // Another dispatch wrote the week's issue between our read and this
        // write (possible on SQLite, where the lock holds nothing): the
        // unique week turned this one away.
        None => Dispatched::AlreadyDispatched { week },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn russian() -> Language {
        Language::parse("ru").expect("a Russian catalogue")
    }

    /// The week's articles, newest first: `(title, language tag)`, `None`
    /// for an unknown language.
    fn week(articles: &[(&str, Option<&str>)]) -> Vec<WeekArticle> {
        let now = Utc::now();
        articles
            .iter()
            .enumerate()
            .map(|(i, (title, tag))| WeekArticle {
                language: tag.map(|tag| Language::parse(tag).expect("a language with a catalogue")),
                article: DigestArticle {
                    id: uuid::Uuid::from_u128(i as u128 + 1),
                    title: (*title).to_owned(),
                    url: format!("https://news.example.org/{i}"),
                    author: None,
                    published_at: now - Duration::hours(i64::try_from(i).unwrap()),
                    summary: format!("{title}, in one line."),
                    source_name: None,
                    section: None,
                },
            })
            .collect()
    }

    fn titles(articles: &[DigestArticle]) -> Vec<&str> {
        articles.iter().map(|a| a.title.as_str()).collect()
    }

    const MIXED: [(&str, Option<&str>); 5] = [
        ("Floods", Some("en")),
        ("Паводок", Some("ru")),
        ("Market", None),
        ("Elections", Some("en")),
        ("Выборы", Some("ru")),
    ];

    #[test]
    fn with_all_the_readers_language_comes_first_each_group_newest_first() {
        let articles = week(&MIXED);
        let all = DigestLanguages::All;
        assert_eq!(
            titles(&for_language(&articles, russian(), all, 10)),
            ["Паводок", "Выборы", "Floods", "Market", "Elections"]
        );
        assert_eq!(
            titles(&for_language(&articles, Language::ENGLISH, all, 10)),
            ["Floods", "Elections", "Паводок", "Market", "Выборы"]
        );
    }

    #[test]
    fn with_reader_only_the_readers_language_and_unknown_ones_are_in() {
        let articles = week(&MIXED);
        let reader = DigestLanguages::Reader;
        assert_eq!(
            titles(&for_language(&articles, russian(), reader, 10)),
            ["Паводок", "Выборы", "Market"]
        );
        assert_eq!(
            titles(&for_language(&articles, Language::ENGLISH, reader, 10)),
            ["Floods", "Elections", "Market"]
        );
    }

    #[test]
    fn the_cap_keeps_the_readers_own_articles_first() {
        let articles = week(&MIXED);
        for (choice, third) in [(DigestLanguages::All, "Floods"), (DigestLanguages::Reader, "Market")] {
            assert_eq!(
                titles(&for_language(&articles, russian(), choice, 2)),
                ["Паводок", "Выборы"]
            );
            assert_eq!(
                titles(&for_language(&articles, russian(), choice, 3)),
                ["Паводок", "Выборы", third]
            );
        }
    }

    #[test]
    fn a_language_with_nothing_of_its_own_gets_every_article_rather_than_none() {
        let english_only = week(&[("Floods", Some("en")), ("Elections", Some("en"))]);
        assert_eq!(
            titles(&for_language(&english_only, russian(), DigestLanguages::Reader, 10)),
            ["Floods", "Elections"]
        );
        // Unknown ones are enough: they are its readers' as much as anyone's.
        let with_unknown = week(&[("Floods", Some("en")), ("Market", None)]);
        assert_eq!(
            titles(&for_language(&with_unknown, russian(), DigestLanguages::Reader, 10)),
            ["Market"]
        );
        assert!(for_language(&[], russian(), DigestLanguages::Reader, 10).is_empty());
    }

    #[test]
    fn after_the_lead_stories_are_grouped_by_section_in_the_staffs_order() {
        let sectioned = |titles: &[(&str, Option<&str>)]| -> Vec<DigestArticle> {
            titles
                .iter()
                .map(|(title, section)| {
                    let mut a = week(&[(title, None)]).remove(0).article;
                    a.section = section.map(str::to_owned);
                    a
                })
                .collect()
        };
        let articles = sectioned(&[
            ("Lead", Some("Sport")),
            ("Goal", Some("Sport")),
            ("Rates", Some("Business")),
            ("Weather", None),
            ("Match", Some("Sport")),
            ("Budget", Some("politics")),
        ]);
        assert_eq!(
            titles(&in_sections(articles.clone(), &["Politics".into(), "Sport".into()])),
            ["Lead", "Weather", "Budget", "Goal", "Match", "Rates"]
        );
        // No order given: sections in the order their first story comes.
        assert_eq!(
            titles(&in_sections(articles, &[])),
            ["Lead", "Weather", "Goal", "Match", "Rates", "Budget"]
        );
    }

    #[test]
    fn articles_of_unknown_language_keep_their_place_among_the_others() {
        let articles = week(&[("Market", None), ("Floods", Some("en")), ("Bazaar", None)]);
        assert_eq!(
            titles(&for_language(&articles, russian(), DigestLanguages::All, 10)),
            ["Market", "Floods", "Bazaar"]
        );
    }
}
