# Gazette's English catalogue: the source every other catalogue translates.
# Every message here must be in every other catalogue too (a unit test
# checks). Placeables: { $name }. Plurals: { $count -> [one] … *[other] … }.

language-name = English

## Dates in running text: "30 November 2026".
date-long = { $day } { $month } { $year }
month-1 = January
month-2 = February
month-3 = March
month-4 = April
month-5 = May
month-6 = June
month-7 = July
month-8 = August
month-9 = September
month-10 = October
month-11 = November
month-12 = December

article-count = { $count ->
    [one] { $count } article
   *[other] { $count } articles
}

## The frame of every page.
language-switch = Language
sign-up-again = Sign up again
back-to-front-page = Back to the front page

## The signup form (/).
signup-title = Subscribe
signup-heading = The week's news, once a week
signup-intro = Once a week, one email with the week's articles and a short summary of each. No tracking, and you can leave with one click.
signup-name = Your name
signup-optional = (optional)
signup-email = Your email address
signup-button = Subscribe
signup-confirm-note = We will send you an email to confirm the address. Until you confirm, you get nothing else from us.

## What is wrong with a name or an address typed into the form.
name-empty = Please tell us your name.
name-too-long = That name is too long: please use at most 100 characters.
name-control-characters = The name contains invisible control characters (such as line breaks); please type it on one line.
email-empty = Please enter your email address.
email-too-long = That address is too long: an email address has at most 254 characters.
email-local-part-too-long = The part before the @ is too long: it can have at most 64 characters.
email-display-name = Please enter only the address, like reader@example.com, without a name or angle brackets.
email-ip-literal = Please use an address with a domain name, not an IP address.
email-missing-tld = The address needs a full domain after the @, such as example.com.
email-local-part = The part before the @ may only use letters, digits and . _ + - and similar characters.
email-non-ascii-local-part = Addresses with characters beyond plain ASCII (such as accented letters) before the @ are not supported; please use an address without them.
email-special-use-domain = Addresses ending in .{ $domain } cannot receive our mail: .{ $domain } is a special-use name that never reaches a mailbox on the internet. Please use your real address.
email-domain = The domain after the @ is not a valid domain name.
email-malformed = That doesn't look like an email address; it should look like reader@example.com.

## A request body that is no readable form.
form-unreadable-title = We could not read the form
form-too-large = The form is too large (at most { $count } bytes).
form-wrong-content-type = The form must be sent as application/x-www-form-urlencoded.
form-not-utf8 = The form could not be read: it is not valid UTF-8 text.
form-incomplete = The form could not be read: the connection broke off.
form-timed-out = The form took too long to arrive (more than { $count } seconds). Please try again.

## After signing up.
check-inbox-title = Check your inbox
check-inbox-body = We have sent you an email with a link to confirm your subscription. Open it to start receiving the weekly digest.
check-inbox-nothing = Nothing there after a few minutes? Look in your spam folder, or
check-inbox-again = sign up again to get a new link.

## The confirmation link's page.
confirm-title = Confirm your subscription
confirm-body = One more step: press the button to start receiving the weekly digest.
confirm-button = Confirm my subscription
confirmed-title = You are subscribed
confirmed-body = Thank you for confirming. The next weekly digest will be in your inbox.
confirmed-leave = Every email has a link to unsubscribe with one click.

## Leaving.
unsubscribe-title = Unsubscribe
unsubscribe-body = Press the button to stop receiving the weekly digest at
unsubscribe-button = Unsubscribe
unsubscribe-changed-mind = Changed your mind? Close this page and nothing changes.
unsubscribe-without-token = To unsubscribe, use the link at the bottom of any issue in your inbox: it is yours alone, and one click on it is enough.
unsubscribed-title = You are unsubscribed
unsubscribed-body = We will send no more digests to
unsubscribed-mistake = Left by mistake? Subscribe again; we will send you an email to confirm it.
unsubscribed-again = Subscribe again

## The archive.
archive-title = Archive
archive-heading = Past issues
archive-empty = No issue has gone out yet.
archive-subscribe = Subscribe
archive-feed = Atom feed
archive-issue-heading = The issue of { $date }
archive-back = All past issues
archive-cta-heading = Get the next issue by email
archive-cta = One email a week with the stories that mattered, each with a short summary. Free, and you can leave with one click.
archive-cta-button = Subscribe

## Pages about problems.
error-unexpected-title = Something went wrong
error-unexpected = Something went wrong on our side and nothing was saved. Please try again in a minute.
error-not-found-title = Page not found
error-not-found = There is no page at this address. It may have moved, or the link may be mistyped.
error-too-many-signups-title = Too many signups
error-too-many-signups = We received too many signups from your network in a short time. Please try again in { $count } seconds.
error-signups-paused-title = Signups are paused for a while
error-signups-paused = We have sent as many confirmation emails as we allow ourselves in an hour, so we are not taking new signups right now. Nothing was saved. Please try again in { $count ->
    [one] a minute
   *[other] about { $count } minutes
}.
error-link-incomplete-title = This link is incomplete
error-confirm-link-incomplete = The confirmation link is missing part of its code; some mail programs cut long links. Try copying the whole link from the email, or sign up again to get a new one.
error-unsubscribe-link-incomplete = The unsubscribe link is missing part of its code; some mail programs cut long links. Copy the whole link from the email, or use the unsubscribe link in any other issue.
error-link-expired-title = This link has expired
error-link-expired = Confirmation links work for a limited time, and this one is no longer valid. Sign up again and we will send you a new link.
error-link-unknown-title = We don't recognise this link
error-confirm-link-unknown = This confirmation link is not valid: it may have been mistyped or replaced by a newer one. Sign up again and we will send you a new link.
error-unsubscribe-link-unknown = This unsubscribe link does not belong to any reader: it may have been mistyped, or the address was erased from our list.
error-no-such-issue-title = No such issue
error-no-such-issue = There is no issue for that week. The archive lists every issue sent so far.

## The site's header and footer.
footer-publisher = Published by { $publisher }.
footer-archive = Past issues
footer-privacy = Privacy

## The front page, besides the form.
home-latest = Latest issue:
home-archive = all past issues
home-privacy-heading = Your data
home-privacy = We keep your address, your name if you give it, your language, and the time and network address of your signup and of your confirmation, to prove you asked for the newsletter. We use them only to send it. Every email has a link to leave at once.
home-privacy-more = The privacy notice in full.

## The privacy notice (/privacy).
privacy-title = Privacy notice
privacy-who = { $publisher } sends this newsletter and is responsible for the data it keeps about its readers.
privacy-what-heading = What we keep
privacy-what-address = Your email address, and your name if you gave one.
privacy-what-language = The language you read the newsletter in.
privacy-what-consent = When you signed up and confirmed, and the network (IP) address both came from: the proof that you asked for the newsletter yourself.
privacy-what-deliveries = Which issues were sent to you and whether your mail server accepted them, and the bounces and complaints it sent back.
privacy-no-tracking = The emails carry no tracking pixels and their links lead straight to the articles: we do not know whether or when you open them.
privacy-why-heading = Why
privacy-why = To send you the newsletter you asked for, to stop sending it to addresses that no longer work or that complained, and to be able to show that you consented.
privacy-how-long-heading = How long
privacy-keep-unconfirmed = A signup that is never confirmed is deleted after { $count ->
    [one] { $count } day
   *[other] { $count } days
}.
privacy-keep-mail = The address in a confirmation email we sent is removed from our records after { $count ->
    [one] { $count } day
   *[other] { $count } days
}.
privacy-keep-deliveries = The record of each issue sent to you is reduced to anonymous counts after { $count ->
    [one] { $count } month
   *[other] { $count } months
}.
privacy-keep-reader = Your address and consent record stay while you are subscribed, and afterwards as the record that you left, until you ask us to erase them.
privacy-leave-heading = How to leave, or have your data erased
privacy-leave = Every email has an unsubscribe link: one click and you get nothing more. To have your data erased, or to see what we keep about you, write to us.
privacy-contact = Contact:

## The weekly digest.
digest-dateline = This week, { $date }
digest-greeting = Dear reader,
digest-greeting-named = Dear { $name },
digest-contents = In this issue
digest-why = You get this email because you subscribed to { $publication }.
digest-preferences = Manage your subscription
digest-unsubscribe = Unsubscribe
digest-web-version = Read this issue on the web
digest-website = { $publication } on the web

## The confirmation email.
confirmation-subject = Please confirm your subscription to { $publication }
confirmation-preheader = One click to start receiving { $publication } every week.
confirmation-hello = Hello,
confirmation-thanks = Thank you for signing up for { $publication }, the weekly digest. Please confirm your subscription:
confirmation-thanks-text = Thank you for signing up for { $publication }, the weekly digest.
confirmation-open-link = Please confirm your subscription by opening this link:
confirmation-paste = Or paste this link into your browser:
confirmation-expiry = The link works for { $count ->
    [one] { $count } hour
   *[other] { $count } hours
}. If you did not sign up, ignore this message: without a confirmation you will not hear from us again.

## The welcome email.
welcome-subject = Welcome to { $publication }
welcome-preheader = What to expect from { $publication }, and how to change it.
welcome-hello = Welcome!
welcome-confirmed = Your subscription to { $publication } is confirmed.
welcome-expect = Once a week you will receive the digest: the week's articles, each with a short summary and a link to read it in full.
welcome-archive = Every issue sent so far is in the archive, the latest first:
welcome-archive-link = Read the latest issue
welcome-preferences = To change your name or language, pause the digest for a few weeks, or unsubscribe, use your preferences page. Its link is yours alone: please do not forward this email.
welcome-preferences-button = My preferences
welcome-preferences-text = Your preferences (name, language, a pause, unsubscribing), a link that is yours alone:

## The reader's preferences page.
preferences-title = Your preferences
preferences-for = Preferences for
preferences-name = Your name (optional)
preferences-language = Language of our emails and pages
preferences-save = Save
preferences-saved = Your preferences are saved.
preferences-pause-heading = Pause the digest
preferences-pause-explain = Going away? Skip a few issues: the digest comes back by itself afterwards.
preferences-pause-weeks = { $count ->
    [one] { $count } week
   *[other] { $count } weeks
}
preferences-pause-button = Pause
preferences-paused-until = The digest is paused until { $date }.
preferences-resume = Resume now
preferences-leave-heading = Leave the list
preferences-private = This page opens from the link in your emails, which is yours alone: please do not share it.
preferences-without-token = To change your preferences, use the link in your welcome email: it is yours alone.
error-preferences-invalid-title = Nothing was changed
error-preferences-pause = A pause lasts from 1 to 8 weeks. Please choose one of the lengths offered.
error-preferences-language = We do not offer that language. Please choose one of the languages listed.
error-preferences-action = The form was incomplete. Please go back and try again.

## Change of address (preferences page, the link's email and pages).
preferences-address-heading = Change your address
preferences-address-label = New email address
preferences-address-button = Send a confirmation link
preferences-address-explain = We will send a link to the new address. Your address changes when you open it; until then, everything keeps going to your current address.
preferences-address-sent = Check the new inbox: we have sent a link to { $email }. Your address changes once you open it; until then, our mail keeps going to { $current }.
preferences-address-pending = A change to { $email } is waiting for you to open the link we sent there (it works until { $date }).
preferences-address-same = { $email } is already your address: nothing was changed and nothing was sent.
preferences-address-too-many = You have asked for { $count ->
    [one] one address change
   *[other] { $count } address changes
} in the last day, as many as we allow. Nothing was sent; please try again tomorrow.
address-change-subject = Confirm your new address for { $publication }
address-change-preheader = One click and { $publication } comes to this address from now on.
address-change-asked = A reader of { $publication }, the weekly digest, asked for it to come to this address from now on. If that was you, please confirm the new address:
address-change-asked-text = A reader of { $publication }, the weekly digest, asked for it to come to this address from now on. If that was you, please confirm the new address by opening this link:
address-change-button = Confirm my new address
address-change-expiry = The link works for { $count ->
    [one] { $count } hour
   *[other] { $count } hours
}. If you did not ask for this, ignore this message: nothing changes, and you will not hear from us again.
address-confirm-title = Confirm your new address
address-confirm-body = Press the button and the weekly digest comes to this address from now on:
address-confirm-button = Use this address
address-confirm-not-you = Did not ask for this? Close this page and nothing changes.
address-changed-title = Your address is changed
address-changed-body = From now on, our mail goes to
address-changed-links = The links in the emails you already have keep working.
error-address-link-incomplete = The link to confirm your new address is missing part of its code; some mail programs cut long links. Copy the whole link from the email.
error-address-link-unknown = This link to confirm a new address is not valid: it may have been mistyped. Nothing was changed.
error-address-link-expired = Links to confirm a new address work for a limited time, and a newer request replaces an older one: this link no longer works. Nothing was changed. Ask again on your preferences page.
error-address-reader-left-title = This subscription has ended
error-address-reader-left = The subscription this link would move to your address has been unsubscribed since the link was sent. Nothing was changed. To receive the digest at this address, sign up on the front page.
error-address-taken-title = This address already has a subscription
error-address-taken = This address already has its own subscription with us (perhaps one that ended), and we never merge two subscriptions into one. Nothing was changed. To receive the digest at this address, sign up with it on the front page, and unsubscribe the old address from any of its emails.

## The staff area's test sends (desk-a11y): where a test copy's links lead.
test-send-title = This was a test send
test-send = You followed a link in a test copy of the newsletter, which the editors send themselves before an issue goes out. A test copy's links belong to no reader, so nothing has changed: each reader's copy carries their own unsubscribe, preferences and web-version links.
archive-not-sent-title = This issue has not been sent yet
archive-not-sent = The issue of { $week } is not on the site: it has not gone out. If you followed the web-version link of a test send, that is why: the editors get a test before the issue goes out, and readers' copies carry their own links.

# JSON API (issue 18, part 1): problem details' titles and details.
api-unauthorized-title = Authentication required
api-unauthorized = This request needs a valid API token in the header "Authorization: Bearer …". The token is missing, unknown or revoked; staff make tokens in the staff area (API tokens) or with "gazette api-tokens create".
api-forbidden-title = Not allowed for this token
api-forbidden = This token's scope does not reach { $reason }. Use a token made for "{ $reason }" or "all".
api-not-found-title = Not found
api-not-found = There is nothing at this address: the id or path names no resource.
api-unreadable-body-title = The body cannot be read
api-unreadable-body = The body is not the JSON this operation takes: { $reason }
api-invalid-fields-title = Some fields are not valid
api-invalid-fields = The request was not carried out: see each field's reason in "errors".
api-invalid-parameters-title = A parameter is not valid
api-invalid-parameters = The request was not carried out: a parameter in the address cannot be used ({ $reason }).
api-too-large-title = The body is too large
api-too-large = The body is too large: at most { $count } bytes.
api-unsupported-media-type-title = The body must be JSON
api-unsupported-media-type = Send the body as "Content-Type: application/json".
api-too-many-requests-title = Too many requests
api-too-many-requests = { $count ->
    [one] This token has made too many requests. Try again in { $count } second.
   *[other] This token has made too many requests. Try again in { $count } seconds.
}
api-signups-paused-title = New readers are paused
api-signups-paused = { $count ->
    [one] So many confirmation emails were sent this hour that new readers are paused. Nothing was written. Try again in { $count } second.
   *[other] So many confirmation emails were sent this hour that new readers are paused. Nothing was written. Try again in { $count } seconds.
}
api-unexpected-title = Something went wrong
api-unexpected = Something went wrong on our side and the request may not have been carried out. Try again in a minute; the server log has the details.
api-language-unknown = There is no catalogue for this language: use one of the site's language tags, such as "en" or "ru".
api-consent-missing = A reader added confirmed needs a consent note: where and how they agreed to receive the digest.
api-consent-without-confirmed = A consent note goes with "confirmed": true only; a reader who must confirm gets a confirmation email instead.
api-consent-too-long = The consent note is too long: please use at most 500 characters.
api-consent-control-characters = The consent note must not contain control characters such as line breaks or tabs.

## Outbound webhooks (issue 18, part 2): the API's field problems.
api-webhook-url-invalid = The address must be an http:// or https:// URL with a host.
api-webhook-url-refused = The address is on this machine, a private network or a special-use address; webhooks go to public addresses only.
api-webhook-events-empty = Choose at least one event: subscriber.created, subscriber.confirmed, subscriber.unsubscribed, subscriber.bounced, subscriber.complained or issue.sent.
api-webhook-event-unknown = One of the events is not known: use subscriber.created, subscriber.confirmed, subscriber.unsubscribed, subscriber.bounced, subscriber.complained or issue.sent.
# JSON API: articles and issues (issue 18, part 1)
api-edited-by-staff-title = The article was edited by staff
api-edited-by-staff = An article at this address was edited in the staff area, so it is left as staff made it and nothing was changed. Its id is { $reason }: change it there, or with PATCH on the API if you must.
api-article-url-invalid = The address must be an absolute http:// or https:// URL.
api-article-title-empty = The title is empty.
api-article-title-too-long = The title is too long: please use at most 300 characters.
api-article-control-characters = This field must not contain control characters (line breaks and tabs are allowed in the body only).
api-article-summary-missing = Give a summary, or the article's text ("body") to make one from.
api-article-summary-empty = The summary must not be empty.
api-article-summary-too-long = { $count ->
    [one] The summary is too long: please use at most { $count } character.
   *[other] The summary is too long: please use at most { $count } characters.
}
api-article-author-too-long = The author is too long: please use at most 200 characters.
api-article-date-invalid = The date must be in RFC 3339 form, such as 2026-11-27T09:30:00Z.

# The JSON API: an article deleted by staff.
api-deleted-by-staff-title = The article was deleted by staff
api-deleted-by-staff = An article at this address was deleted in the staff area, so nothing was changed. Staff can restore it (its id is { $reason }) from “Recently deleted”.
