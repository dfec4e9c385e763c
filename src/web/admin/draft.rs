//! The editor's desk on `/admin/issues`: the draft's subject, preheader and
//! note, the order of its stories (lead first), and "send at". Each form
//! posts here and comes back to the issues page; a refused one shows the
//! page again with what was given and why it was refused.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use uuid::Uuid;

use super::AdminState;
use super::field_errors::FieldErrors;
use super::issues::{self, DeskForms, ScheduleForm, ShapeFields, ShapeForm};
use super::session::{self, Staff, StaffForm};
use crate::db::{articles, issue_drafts};
use crate::digest::render::DigestArticle;
use crate::domain::{EditorNote, IssueWeek, SectionName};
use crate::links::paths;
use crate::web::error::PageError;

/// The longest subject and preheader staff may write, in characters.
const MAX_SUBJECT_CHARS: usize = 200;
const MAX_PREHEADER_CHARS: usize = 200;

/// The draft's week as the form was shown for: a form for a week that is
/// no longer the draft's (this week's issue went out meanwhile) is refused
/// rather than applied to another issue.
fn draft_week<const LIMIT: usize>(fields: &StaffForm<LIMIT>, current: IssueWeek) -> Result<IssueWeek, PageError> {
    match IssueWeek::parse(fields.get("week")) {
        Some(week) if week == current => Ok(week),
        _ => Err(PageError::bad_request(
            "The issue has changed",
            "This form was for another week's issue (one went out since the page was loaded). \
             Reload the issues page and try again.",
        )),
    }
}

/// Where the story the form names (`article`) stands in the draft; a story
/// that left the draft since the page was loaded is refused.
fn draft_story(fields: &StaffForm, stories: &[DigestArticle]) -> Result<usize, PageError> {
    Uuid::parse_str(fields.get("article"))
        .ok()
        .and_then(|id| stories.iter().position(|a| a.id == id))
        .ok_or_else(|| {
            PageError::bad_request(
                "That story is not in the issue",
                "It may have been excluded or deleted since the page was loaded. Reload the issues page.",
            )
        })
}

/// One line of text staff wrote (a subject, a preheader): trimmed, within
/// `max` characters, without control characters.
fn one_line(raw: &str, max: usize, what: &str) -> Result<String, String> {
    let text = raw.trim();
    if text.chars().any(char::is_control) {
        return Err(format!("The {what} must be one line without control characters."));
    }
    let chars = text.chars().count();
    if chars > max {
        return Err(format!("The {what} is too long: {chars} characters, at most {max}."));
    }
    Ok(text.to_owned())
}

/// Saves the draft's subject, preheader and note. A subject equal to the
/// generated one (or empty) is not kept, so it follows the lead story.
pub async fn save_shape(
    fields: StaffForm<{ 32 * 1024 }>,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let now = Utc::now();
    let preview = issues::preview(&state, now).await?;
    let week = draft_week(&fields, preview.draft_week)?;
    let mut errors = FieldErrors::default();
    let subject = one_line(fields.get("subject"), MAX_SUBJECT_CHARS, "subject").unwrap_or_else(|why| {
        errors.add("issue-subject", why);
        String::new()
    });
    let preheader = one_line(fields.get("preheader"), MAX_PREHEADER_CHARS, "preheader").unwrap_or_else(|why| {
        errors.add("preheader", why);
        String::new()
    });
    if let Err(why) = EditorNote::parse(fields.get("note")) {
        errors.add("note", why.to_string());
    }
    if !errors.is_empty() {
        let forms = DeskForms {
            shape: ShapeForm {
                given: Some(ShapeFields {
                    subject: fields.get("subject").to_owned(),
                    preheader: fields.get("preheader").to_owned(),
                    note: fields.get("note").to_owned(),
                }),
                errors,
            },
            ..DeskForms::default()
        };
        return issues::issues_page(&state, &session, &staff, StatusCode::BAD_REQUEST, forms).await;
    }
    let subject =
        (!subject.is_empty() && preview.generated_subject.as_deref() != Some(subject.as_str())).then_some(subject);
    let preheader = (!preheader.is_empty()).then_some(preheader);
    let note = fields.get("note").trim();
    issue_drafts::save_words(
        &state.db,
        week,
        subject.as_deref(),
        preheader.as_deref(),
        note,
        &staff.email,
        now,
    )
    .await?;
    tracing::info!(staff = %staff.email, %week, own_subject = subject.is_some(), "issue words saved");
    session::flash(&session, format!("The words of {week}'s issue are saved."));
    Ok(session::see_other(paths::ADMIN_ISSUES))
}

/// Moves one story of the draft: up, down, or to the lead.
pub async fn reorder(
    fields: StaffForm,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let now = Utc::now();
    let preview = issues::preview(&state, now).await?;
    let week = draft_week(&fields, preview.draft_week)?;
    let mut order: Vec<Uuid> = preview.articles.iter().map(|a| a.id).collect();
    let at = draft_story(&fields, &preview.articles)?;
    let to = match fields.get("move") {
        "up" => at.saturating_sub(1),
        "down" => (at + 1).min(order.len() - 1),
        "lead" => 0,
        _ => {
            return Err(PageError::bad_request(
                "The story was not moved",
                "The form asked for a move other than up, down or lead. Reload the issues page.",
            ));
        }
    };
    let story = order.remove(at);
    order.insert(to, story);
    issue_drafts::set_order(&state.db, week, &order, &staff.email, now).await?;
    let title = &preview.articles[at].title;
    let message = match to {
        0 => format!("“{title}” is now the lead story."),
        _ => format!("“{title}” is now story {} of {}.", to + 1, order.len()),
    };
    session::flash(&session, message);
    Ok(session::see_other(&format!("{}#draft-stories", paths::ADMIN_ISSUES)))
}

/// Gives a story of the draft a section of its own (empty: its source's,
/// or none).
pub async fn set_section(
    fields: StaffForm,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let now = Utc::now();
    let preview = issues::preview(&state, now).await?;
    draft_week(&fields, preview.draft_week)?;
    let story = &preview.articles[draft_story(&fields, &preview.articles)?];
    let section = SectionName::parse(fields.get("section"))
        .map_err(|why| PageError::bad_request("The section was not set", why.to_string()))?;
    articles::set_section(&state.db, story.id, section.as_ref().map(SectionName::as_str), now).await?;
    tracing::info!(staff = %staff.email, article = %story.id, "article section set");
    session::flash(
        &session,
        match &section {
            Some(section) => format!("“{}” is in the section {}.", story.title, section.as_str()),
            None => format!("“{}” has no section of its own now.", story.title),
        },
    );
    Ok(session::see_other(&format!("{}#draft-stories", paths::ADMIN_ISSUES)))
}

/// Puts the draft's sections in the order staff give (comma-separated or
/// one per line).
pub async fn order_sections(
    fields: StaffForm,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let now = Utc::now();
    let preview = issues::preview(&state, now).await?;
    let week = draft_week(&fields, preview.draft_week)?;
    let order = SectionName::parse_list(fields.get("sections"))
        .map_err(|why| PageError::bad_request("The sections were not ordered", why.to_string()))?;
    let order: Vec<String> = order.iter().map(|s| s.as_str().to_owned()).collect();
    issue_drafts::save_section_order(&state.db, week, &order, &staff.email, now).await?;
    session::flash(
        &session,
        format!("The sections of {week}'s issue are in the order you gave."),
    );
    Ok(session::see_other(&format!("{}#draft-stories", paths::ADMIN_ISSUES)))
}

/// Why a "send at" time was refused.
fn parse_send_at(raw: &str, zone: chrono_tz::Tz, week: IssueWeek, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let local = NaiveDateTime::parse_from_str(raw.trim(), "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(raw.trim(), "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| "Give a date and time, such as 2026-12-04T09:00.".to_owned())?;
    let at = match zone.from_local_datetime(&local) {
        chrono::LocalResult::Single(at) => at.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(..) => {
            return Err(format!(
                "{local} happens twice in {zone} (the clocks go back): choose another time."
            ));
        }
        chrono::LocalResult::None => {
            return Err(format!(
                "{local} does not exist in {zone} (the clocks go forward): choose another time."
            ));
        }
    };
    if at <= now {
        return Err("That time has passed: choose a time in the future.".into());
    }
    if IssueWeek::of(at, zone) != week {
        return Err(format!(
            "This is {week}'s issue: choose a time in that week (Monday to Sunday, {zone})."
        ));
    }
    Ok(at)
}

/// Schedules the draft to go out at a time of its own, or takes the time
/// off (`action=unschedule`), leaving it to the weekly schedule.
pub async fn schedule(
    fields: StaffForm,
    session: Session,
    staff: web::ReqData<Staff>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, PageError> {
    let now = Utc::now();
    let preview = issues::preview(&state, now).await?;
    let week = draft_week(&fields, preview.draft_week)?;
    if fields.get("action") == "unschedule" {
        issue_drafts::schedule(&state.db, week, None, &staff.email, now).await?;
        tracing::info!(staff = %staff.email, %week, "issue unscheduled");
        session::flash(
            &session,
            format!("{week}'s issue is no longer scheduled; the weekly schedule sends it."),
        );
        return Ok(session::see_other(paths::ADMIN_ISSUES));
    }
    let zone = state.settings.schedule.timezone.0;
    match parse_send_at(fields.get("send_at"), zone, week, now) {
        Ok(at) => {
            issue_drafts::schedule(&state.db, week, Some(at), &staff.email, now).await?;
            tracing::info!(staff = %staff.email, %week, send_at = %at, "issue scheduled");
            let local = at.with_timezone(&zone).format("%A %-d %B %Y, %H:%M");
            session::flash(&session, format!("{week}'s issue will go out on {local} ({zone})."));
            Ok(session::see_other(paths::ADMIN_ISSUES))
        }
        Err(why) => {
            let forms = DeskForms {
                schedule: ScheduleForm {
                    send_at: Some(fields.get("send_at").to_owned()),
                    errors: FieldErrors::one("send-at", why),
                },
                ..DeskForms::default()
            };
            issues::issues_page(&state, &session, &staff, StatusCode::BAD_REQUEST, forms).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_time_must_be_in_the_future_within_the_drafts_week_and_exist_in_the_zone() {
        let zone: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 3, 24, 12, 0, 0).unwrap();
        let week = IssueWeek::of(now, zone);
        assert_eq!(
            parse_send_at("2026-03-27T09:30", zone, week, now),
            Ok(Utc.with_ymd_and_hms(2026, 3, 27, 8, 30, 0).unwrap())
        );
        assert!(parse_send_at("2026-03-24T12:30", zone, week, now).is_err(), "passed");
        assert!(
            parse_send_at("2026-03-30T09:00", zone, week, now)
                .unwrap_err()
                .contains("that week")
        );
        // The clocks go forward at 02:00 on 29 March 2026 in Berlin.
        assert!(
            parse_send_at("2026-03-29T02:30", zone, week, now)
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(
            parse_send_at("next friday", zone, week, now)
                .unwrap_err()
                .contains("such as")
        );
    }
}
