//! Integration tests: each drives the real application (HTTP, SMTP, CLI)
//! and runs once per database backend. SQLite always runs; PostgreSQL runs
//! when GAZETTE_TEST_POSTGRES_URL is set, and is listed as ignored (with the
//! reason) when it is not, unless CI=true, where it must run.

mod admin;
mod admin_browser;
mod article_languages;
mod backup;
mod cli;
mod clicks;
mod configuration;
mod confirm;
mod db_connections;
mod delivery;
mod deploy;
mod desk;
mod digest;
mod dispatch_door;
mod engine;
mod feed_identity;
mod feed_sources;
mod health;
mod helpers;
mod hostile;
mod imports;
mod inbound_classify;
mod inbound_imap;
mod inbound_policy;
mod inbound_smtp;
mod inbound_webhooks;
mod json_api;
mod languages;
mod liveness;
mod logs;
mod never_lose_work;
mod nginx;
mod ops;
mod preferences;
mod reader_browser;
mod relay_rate;
mod relays;
mod restart;
mod retention;
mod schema;
mod search;
mod signup;
mod site;
mod smtp_faults;
mod smtp_protocol;
mod smtp_server;
mod subscribers_csv;
mod trust_dkim;
mod trust_feeds;
mod trust_http;
mod trust_links;
mod trust_login;
mod trust_proxy;
mod trust_secrets;
mod trust_signup;
mod unsubscribe;
mod webhooks;

use helpers::{Backend, TestFn};

macro_rules! suite {
    ($($test:path),* $(,)?) => {
        vec![$((
            stringify!($test).replace(' ', ""),
            (|backend| Box::pin($test(backend))) as TestFn,
        )),*]
    };
}

fn main() {
    // Every `gazette` the tests start reads the checkout's configuration,
    // also on a machine where Gazette is installed in /etc/gazette.
    // SAFETY: no other thread runs yet.
    unsafe { std::env::set_var("GAZETTE_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config")) };
    let args = libtest_mimic::Arguments::from_args();
    schema::record_statements_if_asked();
    let tests = suite![
        engine::an_issue_reaches_every_reader_once_within_each_connection_limit,
        engine::a_relay_that_closes_connections_early_costs_no_message,
        engine::deferred_refused_and_bounced_readers_each_get_their_due,
        engine::a_relay_that_refuses_our_sender_bounces_no_reader_and_loses_no_copy,
        engine::hang_ups_mid_message_are_retried_with_one_accepted_copy,
        engine::an_smtp_outage_mid_issue_delays_it_without_losing_or_repeating_anyone,
        engine::a_confirmation_leaves_within_seconds_while_a_large_issue_is_sending,
        engine::sigterm_mid_issue_stops_promptly_and_returns_unsent_claims,
        engine::a_killed_worker_loses_no_reader_and_repeats_at_most_its_unrecorded_sends,
        liveness::a_killed_workers_claims_are_sent_within_seconds_not_after_its_lease,
        liveness::a_live_but_slow_worker_keeps_its_claims,
        relay_rate::two_workers_together_keep_to_the_relays_rate_confirmations_included,
        relay_rate::two_workers_keep_each_relays_own_rate,
        relays::a_relay_down_from_the_start_cools_down_and_every_reader_gets_the_issue_once_through_the_other,
        relays::a_relay_that_goes_down_mid_issue_and_comes_back_is_used_again_and_nobody_is_lost,
        relays::messages_are_spread_over_the_relays_by_weight,
        relays::a_relay_that_answers_421_at_the_greeting_passes_its_mail_to_the_other_at_no_attempt,
        signup::a_reader_signs_up_confirms_by_email_and_is_subscribed,
        signup::invalid_signups_get_a_400_page_with_the_reason_and_their_values,
        signup::a_form_that_is_not_utf8_gets_a_400_page,
        signup::an_oversized_body_gets_413,
        signup::a_body_of_another_type_gets_415,
        signup::a_pending_reader_who_signs_up_again_gets_a_new_email_and_keeps_one_row,
        signup::a_confirmed_reader_who_signs_up_again_sees_the_same_page_and_gets_no_new_row,
        signup::one_mailbox_spelled_two_ways_is_one_subscriber,
        signup::an_idn_domain_is_stored_in_ascii_form,
        signup::confirmation_emails_per_address_are_capped_per_day,
        signup::signups_past_the_per_ip_limit_get_a_429_page,
        signup::many_readers_signing_up_at_once_each_get_their_emails,
        confirm::opening_the_link_shows_a_button_and_changes_nothing,
        confirm::confirming_twice_is_harmless,
        confirm::an_expired_link_offers_to_sign_up_again,
        confirm::an_unknown_or_mangled_token_gets_a_clear_page,
        unsubscribe::a_reader_unsubscribes_on_the_page_and_can_subscribe_again,
        unsubscribe::one_click_unsubscribe_answers_200_for_both_body_types_and_repeats,
        unsubscribe::unknown_or_mangled_unsubscribe_links_get_clear_pages,
        delivery::a_signup_while_smtp_is_down_is_mailed_once_it_is_back,
        delivery::a_message_the_server_refuses_for_good_is_marked_failed_and_not_retried,
        delivery::a_message_held_by_a_worker_that_died_is_sent_once_its_lease_runs_out,
        delivery::a_worker_whose_lease_ran_out_cannot_overwrite_the_next_claim,
        delivery::mail_goes_through_starttls_with_auth_to_a_relay_with_a_private_ca,
        delivery::mail_goes_through_implicit_tls_with_auth,
        delivery::a_wrong_smtp_password_keeps_the_mail_queued_with_the_reason,
        delivery::a_separate_worker_process_delivers_what_the_web_process_queued,
        delivery::a_hard_bounce_marks_the_reader_bounced_and_a_policy_refusal_does_not,
        smtp_faults::a_greylisted_reader_gets_their_email_after_two_451s,
        smtp_faults::an_unknown_user_and_a_policy_refusal_fail_without_retries,
        smtp_faults::a_connection_dropped_at_any_point_is_retried_until_the_message_is_accepted,
        smtp_faults::mail_waits_out_an_outage_and_arrives_once_after_it,
        smtp_faults::a_server_limit_on_messages_per_connection_is_never_exceeded,
        smtp_protocol::a_refused_recipient_in_a_pipeline_fails_alone_and_the_connection_goes_on,
        smtp_protocol::a_421_mid_pipeline_moves_the_message_to_a_new_connection_at_once,
        smtp_protocol::a_connection_dropped_mid_pipeline_loses_no_one_and_repeats_no_one,
        smtp_protocol::a_relay_without_pipelining_gets_one_command_at_a_time,
        smtp_protocol::a_stalled_relay_times_out_and_the_message_is_retried_and_delivered_once,
        smtp_protocol::an_oversize_message_fails_at_once_and_is_not_retried,
        smtp_protocol::lines_beginning_with_a_dot_arrive_as_they_were_written,
        smtp_protocol::each_message_goes_out_with_the_next_ones_envelope_in_one_round_trip,
        health::health_check_answers_200_when_the_database_answers,
        health::health_check_answers_503_when_the_database_does_not,
        health::unknown_pages_get_a_404_page,
        digest::an_issue_reaches_each_confirmed_reader_once_and_one_click_unsubscribes,
        digest::a_week_without_new_articles_sends_nothing,
        digest::two_workers_share_the_queue_and_never_send_twice,
        subscribers_csv::an_import_reports_bad_rows_by_line_and_each_new_reader_gets_an_opt_in_email,
        imports::each_tools_export_is_recognised_and_readers_who_left_are_never_mailed,
        imports::semicolons_tabs_and_utf16_read_and_an_unclosed_quote_names_its_line,
        imports::the_staff_import_says_which_tool_the_rows_came_from,
        subscribers_csv::a_confirmed_import_mails_no_one_and_never_resubscribes_a_reader_who_left,
        subscribers_csv::an_export_lists_subscribers_as_csv_filtered_by_status_and_imports_again,
        cli::migrate_applies_the_migrations_and_exits,
        cli::the_fixture_imports_once_with_a_generated_summary,
        cli::a_feed_imports_its_good_entries_and_names_the_bad_one,
        cli::an_rss_feed_with_cdata_entities_relative_links_and_no_dates_imports,
        cli::a_feed_imports_from_a_url,
        cli::a_large_json_feed_shows_progress_and_staff_edits_survive_reimport,
        cli::bad_import_arguments_get_errors_naming_them,
        cli::dispatch_dry_run_previews_the_week_and_writes_nothing,
        feed_identity::two_feeds_numbering_their_items_1_are_two_articles,
        feed_identity::a_podcast_whose_items_share_a_link_imports_every_episode_and_again_changes_nothing,
        feed_identity::a_changed_entry_is_updated_and_one_staff_edited_is_kept,
        feed_identity::entries_without_an_id_are_identified_by_their_link,
        feed_identity::the_digest_names_each_storys_source,
        feed_identity::a_database_of_the_previous_schema_migrates_and_its_articles_are_adopted_not_lost,
        cli::staff_users_get_argon2id_passwords_from_stdin_and_can_change_them,
        cli::serve_says_how_to_create_the_first_staff_user,
        configuration::config_check_reports_whether_the_database_answers,
        admin::the_dashboard_shows_when_the_schedule_sends_next,
        admin::every_admin_route_but_login_sends_anonymous_visitors_to_the_login_page,
        admin::a_staff_member_logs_in_and_out_with_a_safe_cookie,
        admin::a_https_site_marks_the_session_cookie_secure,
        admin::an_unknown_address_and_a_wrong_password_get_the_same_answer_in_the_same_time,
        admin::login_attempts_past_the_limits_get_a_429_page,
        admin::forms_without_the_token_or_from_another_site_get_403_and_change_nothing,
        admin::changing_the_password_needs_the_current_one_and_ends_other_sessions,
        admin::staff_add_edit_leave_out_regenerate_and_delete_an_article,
        admin::a_test_send_reaches_the_staff_member_once_even_when_submitted_twice,
        admin::send_now_asks_first_and_queues_the_issue_once_for_a_double_submit,
        admin::staff_pause_resume_cancel_a_send_and_retry_failed_copies,
        admin::staff_search_filter_view_and_unsubscribe_readers,
        admin::erasing_a_reader_removes_their_personal_data_and_keeps_an_anonymous_count,
        admin::erasing_a_reader_clears_the_relay_replies_kept_with_their_copies,
        admin::the_csv_export_holds_the_current_filter,
        admin::the_csv_import_reports_rejected_rows_and_asks_new_readers_to_opt_in,
        admin::the_preview_is_the_digest_in_a_sandboxed_frame_with_its_text_part,
        admin::the_drafts_stories_lead_to_their_edit_pages_and_their_published_pages_apart,
        admin::pause_and_cancel_are_offered_while_copies_wait_and_refused_once_none_does,
        admin::a_test_sends_own_links_say_it_was_a_test_and_change_no_one,
        admin::staff_pages_skip_to_their_content_and_mark_their_section,
        admin::a_generated_session_key_is_private_and_survives_a_restart,
        admin::staff_import_a_feed_by_its_address,
        admin::hostile_input_on_every_admin_route_gets_no_5xx_and_no_unescaped_echo,
        ops::two_instances_scheduled_for_the_same_moment_dispatch_one_issue,
        ops::a_run_missed_while_stopped_is_caught_up_within_the_grace_period_and_skipped_after,
        ops::the_next_run_is_in_the_configured_zone_and_none_when_disabled,
        ops::metrics_count_readers_requests_and_smtp_sends,
        ops::metrics_show_the_queue_depth_by_kind,
        ops::every_response_carries_a_request_id_kept_from_the_request_when_sane,
        ops::json_logs_carry_the_request_id,
        ops::serve_logs_the_next_dispatch_and_stops_on_sigterm,
        hostile::hostile_input_on_every_public_route_gets_no_5xx_and_no_unescaped_echo,
        trust_proxy::forwarding_headers_count_only_from_a_trusted_proxy_and_ipv6_is_limited_per_64,
        trust_http::head_is_answered_on_every_get_route_and_there_is_a_favicon,
        trust_http::a_body_that_trickles_in_is_cut_off_with_408,
        trust_http::metrics_are_served_on_their_own_listener_only,
        trust_http::metrics_gauges_are_read_once_per_cache_age,
        trust_signup::the_confirmation_email_repeats_nothing_the_form_said,
        trust_signup::special_use_domains_are_refused_at_signup_and_import,
        trust_signup::a_non_ascii_local_part_is_called_unsupported,
        trust_signup::confirmation_emails_past_the_hourly_cap_are_refused_across_processes,
        trust_signup::reaching_the_confirmation_cap_is_logged_once_and_so_is_the_end_of_it,
        trust_links::a_placeholder_in_an_article_never_receives_a_readers_link,
        trust_links::an_issue_queued_before_the_upgrade_goes_out_with_the_link_in_its_footer_only,
        trust_links::a_cancelled_issue_leaves_the_archive_and_its_feed,
        trust_links::the_scheduler_the_cli_and_send_now_agree_on_the_week_in_the_schedules_zone,
        trust_login::wrong_passwords_from_one_client_never_keep_the_owner_out_on_another,
        trust_login::every_spelling_of_the_address_counts_against_one_account,
        trust_login::a_login_flood_never_runs_more_password_checks_at_once_than_the_cap,
        trust_login::logout_ends_the_session_on_the_server_so_a_copied_cookie_stops_working,
        trust_login::a_password_change_ends_copied_sessions_and_every_session_ends_after_its_lifetime,
        trust_secrets::access_logs_show_confirm_and_unsubscribe_links_without_their_tokens,
        trust_secrets::both_exports_guard_formulas_and_import_again_creating_nothing,
        trust_secrets::an_erased_reader_loses_their_unsubscribe_link_and_leaves_every_export,
        trust_secrets::the_cli_and_the_staff_export_are_the_same_file_and_leave_out_erased_readers,
        trust_dkim::every_kind_of_message_verifies_with_dkimpy_rsa_sha256,
        trust_dkim::every_kind_of_message_verifies_with_dkimpy_ed25519_sha256,
        trust_dkim::confirmations_and_digests_verify_when_a_worker_process_signs_on_its_pool,
        trust_feeds::a_feed_on_this_machine_or_a_metadata_address_is_refused_and_never_requested,
        trust_feeds::an_import_by_url_returns_at_once_and_its_page_shows_progress_then_the_counts,
        trust_feeds::outside_text_with_control_characters_is_escaped_on_the_terminal,
        schema::a_database_filled_by_every_earlier_version_migrates_without_loss,
        schema::only_migrate_changes_the_schema_and_other_commands_refuse_a_mismatch,
        schema::the_recorded_releases_statements_prepare_against_the_newest_schema,
        retention::prune_removes_exactly_what_retention_no_longer_keeps_and_issue_counts_stay,
        retention::serve_prunes_at_start_up_and_stops_cleanly_on_sigterm,
        retention::two_prunes_at_once_count_each_delivery_once,
        deploy::a_timer_run_after_an_outage_dispatches_the_missed_runs_week_as_of_its_time,
        deploy::serve_started_after_an_outage_dispatches_the_missed_runs_week_as_of_its_time,
        restart::a_restart_on_the_passed_socket_answers_every_request_under_load,
        logs::json_logs_are_objects_with_each_requests_fields_and_no_secrets,
        logs::human_logs_into_a_pipe_have_no_colour_codes,
        logs::the_worker_greets_the_relay_with_the_configured_helo_name,
        logs::a_role_that_stops_on_an_error_says_why_in_its_json_log,
        inbound_policy::bounces_complaints_and_blocks_each_do_what_the_policy_says_and_show_in_the_staff_area,
        inbound_policy::mail_to_the_unsubscribe_address_unsubscribes_the_reader_whatever_it_says,
        inbound_policy::a_bounced_or_complained_reader_gets_no_further_copy,
        inbound_policy::a_bounce_is_put_down_to_the_last_copy_and_a_copy_that_got_through_restarts_the_soft_count,
        inbound_classify::with_a_bounce_domain_it_prints_the_reader_a_return_path_names,
        languages::pages_speak_the_readers_choice_else_their_browsers_language,
        languages::a_reader_who_signs_up_on_the_russian_page_gets_russian_mail,
        languages::the_site_default_language_serves_browsers_that_ask_for_none_gazette_has,
        languages::each_reader_gets_the_issue_in_their_language,
        languages::each_reader_is_greeted_by_name_where_it_is_known,
        article_languages::each_reader_gets_the_stories_in_their_language_first,
        article_languages::with_reader_languages_each_reader_gets_only_theirs_and_unknown_ones,
        article_languages::with_reader_languages_a_language_without_stories_gets_them_all,
        article_languages::a_source_language_declared_by_staff_overrides_the_feeds_own,
        article_languages::staff_choose_the_language_of_the_articles_they_write,
        site::every_page_names_the_publisher_and_the_privacy_notice_follows_the_settings,
        preferences::confirming_sends_one_welcome_email_in_the_readers_language_with_a_working_preferences_link,
        preferences::without_signup_welcome_a_confirmed_reader_gets_no_welcome_email,
        preferences::each_preference_change_is_saved_as_an_event_and_bad_values_or_links_change_nothing,
        preferences::a_paused_reader_gets_no_issue_dispatched_while_paused_and_the_next_after_it,
        preferences::a_reader_moves_to_a_new_address_once_its_inbox_confirms_and_keeps_their_consent_record,
        preferences::a_russian_reader_is_asked_mailed_and_answered_in_russian,
        preferences::another_readers_address_a_newer_request_expiry_and_the_daily_cap_change_nothing,
        preferences::readers_who_left_were_erased_or_bounced_and_undeliverable_links,
        inbound_webhooks::the_webhook_routes_answer_404_until_configured,
        json_api::tokens_reach_their_scope_revoked_ones_get_401_and_each_has_its_rate_limit,
        json_api::a_reader_added_through_the_api_is_signed_up_as_on_the_form,
        json_api::readers_are_paged_by_cursor_changed_unsubscribed_and_erased,
        json_api::the_openapi_document_describes_every_registered_route_and_no_other,
        inbound_webhooks::mailgun_posts_are_refused_unless_signed_and_fresh_stored_once_and_bounce_the_reader,
        inbound_webhooks::postmark_posts_need_the_credentials_are_stored_once_and_a_complaint_unsubscribes,
        search::staff_find_readers_and_articles_in_any_case_with_or_without_accents,
        search::every_write_keeps_the_search_key_of_what_it_wrote,
        search::rows_without_keys_are_found_the_old_way_until_migrate_fills_their_keys_in,
        desk::an_editor_orders_the_stories_chooses_the_lead_and_writes_the_words_readers_get,
        desk::words_the_digest_cannot_carry_are_refused_at_their_field,
        desk::a_scheduled_issue_goes_out_at_its_time_and_the_desk_moves_to_next_weeks_draft,
        desk::the_digest_groups_stories_by_section_in_the_order_staff_choose,
        clicks::a_persons_click_is_counted_a_scanners_fetch_is_not_and_no_reader_is_known,
        webhooks::each_event_reaches_the_endpoint_once_and_verifies_with_standardwebhooks,
        webhooks::a_receiver_answering_500_twice_sees_the_same_event_three_times_further_apart,
        webhooks::a_receiver_that_is_down_gets_the_event_once_it_is_up,
        webhooks::an_endpoint_that_answers_410_is_disabled_and_sent_nothing_more,
        webhooks::private_addresses_are_refused_at_registration_and_at_delivery,
        json_api::articles_are_pushed_once_per_address_listed_changed_and_left_out_of_the_issue,
        json_api::issues_are_listed_with_their_counts_and_the_weeks_dry_run_writes_nothing,
        json_api::staff_make_list_and_revoke_api_tokens_in_the_staff_area,
        never_lose_work::destructive_actions_ask_on_a_page_of_their_own_and_a_stray_post_does_nothing,
        never_lose_work::a_deleted_article_is_hidden_everywhere_stays_deleted_on_reimport_and_is_restorable_for_30_days,
        never_lose_work::replaced_summaries_are_kept_with_when_and_by_whom_and_can_be_restored,
        never_lose_work::two_staff_editing_one_article_get_a_conflict_page_not_a_silent_overwrite,
        never_lose_work::the_article_list_shows_summaries_and_draft_states_and_acts_on_a_selection,
        never_lose_work::the_summary_field_counts_its_characters_for_everyone_before_saving,
        never_lose_work::readers_selected_in_the_list_are_unsubscribed_erased_after_confirming_or_exported,
    ];
    let mut trials = Vec::new();
    for backend in Backend::all() {
        for (name, test) in &tests {
            trials.push(helpers::trial(backend.clone(), name, *test));
        }
    }
    // The webhook tests verify signatures with the Standard Webhooks
    // library (installed by .ci/run): without it they are listed as
    // skipped, with the reason, except in CI, where they must run.
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if let Some(why) = webhooks::missing_verifier().filter(|_| !in_ci) {
        eprintln!("skipping the webhook tests: {why}");
        trials = trials
            .into_iter()
            .map(|trial| match trial.name().contains("::webhooks::") {
                true => trial.with_ignored_flag(true).with_kind(format!("skipped: {why}")),
                false => trial,
            })
            .collect();
    }
    // The browser test runs once, on SQLite: what it checks does not depend
    // on the backend, and each run starts a browser.
    let [sqlite, _] = Backend::all();
    let browser = helpers::trial(
        sqlite,
        "admin_browser::staff_log_in_add_an_article_preview_test_and_send_in_chromium",
        |backend| Box::pin(admin_browser::staff_log_in_add_an_article_preview_test_and_send_in_chromium(backend)),
    );
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    // It runs axe-core as the reader's browser test does.
    trials.push(match reader_browser::missing() {
        Some(why) if !in_ci => {
            eprintln!("skipping the browser test: {why}");
            browser.with_ignored_flag(true).with_kind(format!("skipped: {why}"))
        }
        _ => browser,
    });
    let reader = helpers::trial(
        Backend::all()[0].clone(),
        "reader_browser::a_reader_signs_up_in_russian_and_every_public_page_passes_axe_in_chromium",
        |backend| {
            Box::pin(reader_browser::a_reader_signs_up_in_russian_and_every_public_page_passes_axe_in_chromium(backend))
        },
    );
    trials.push(match reader_browser::missing() {
        Some(why) if !in_ci => {
            eprintln!("skipping the reader's browser test: {why}");
            reader.with_ignored_flag(true).with_kind(format!("skipped: {why}"))
        }
        _ => reader,
    });
    let click = helpers::trial(
        Backend::all()[0].clone(),
        "clicks::a_click_in_chromium_counts_once",
        |backend| Box::pin(clicks::a_click_in_chromium_counts_once(backend)),
    );
    trials.push(match admin_browser::missing_browser() {
        Some(why) if !in_ci => click.with_ignored_flag(true).with_kind(format!("skipped: {why}")),
        _ => click,
    });
    let preferences_walk = helpers::trial(
        Backend::all()[0].clone(),
        "reader_browser::a_russian_reader_pauses_resumes_and_leaves_on_their_preferences_page_in_chromium",
        |backend| {
            Box::pin(
                reader_browser::a_russian_reader_pauses_resumes_and_leaves_on_their_preferences_page_in_chromium(
                    backend,
                ),
            )
        },
    );
    trials.push(match reader_browser::missing() {
        Some(why) if !in_ci => preferences_walk
            .with_ignored_flag(true)
            .with_kind(format!("skipped: {why}")),
        _ => preferences_walk,
    });
    // The tests that run Debian's nginx (the reverse proxy in front of the
    // app; the feeds the sources poll) are skipped with the reason without
    // it, like the browser test, and must run with CI=true.
    let nginx_tests = suite![
        trust_proxy::two_clients_behind_nginx_are_limited_apart_and_recorded_with_their_own_addresses,
        feed_sources::polls_honour_nginxs_etag_and_304_pick_up_changes_and_back_off_on_500s,
        feed_sources::feeds_commands_add_list_remove_and_name_what_is_wrong,
        feed_sources::staff_add_list_poll_and_remove_sources_on_the_sources_page,
        feed_sources::serve_polls_a_due_source_by_itself,
        feed_sources::two_pollers_on_one_database_poll_each_due_source_once,
        feed_sources::the_scheduled_dispatch_polls_each_source_once_more_first,
    ];
    for backend in Backend::all() {
        for (name, test) in &nginx_tests {
            let trial = helpers::trial(backend.clone(), name, *test);
            trials.push(match nginx::missing() {
                Some(why) if !in_ci => trial.with_ignored_flag(true).with_kind(format!("skipped: {why}")),
                _ => trial,
            });
        }
    }
    // The IMAP poller's tests run Debian's Dovecot; skipped with the reason
    // without it, and must run with CI=true.
    let dovecot_tests = suite![
        inbound_imap::imap_mail_is_stored_once_moved_and_new_mail_comes_through_idle,
        inbound_imap::a_poller_killed_midway_over_tls_stores_nothing_twice_after_a_restart,
    ];
    for backend in Backend::all() {
        for (name, test) in &dovecot_tests {
            let trial = helpers::trial(backend.clone(), name, *test);
            trials.push(match inbound_imap::missing() {
                Some(why) if !in_ci => trial.with_ignored_flag(true).with_kind(format!("skipped: {why}")),
                _ => trial,
            });
        }
    }
    // The fail2ban test needs Debian's fail2ban; like nginx's, it is skipped
    // with the reason without it, and must run with CI=true.
    for backend in Backend::all() {
        let trial = helpers::trial(
            backend,
            "logs::fail2ban_finds_each_failed_login_by_its_client_and_nothing_else",
            |backend| {
                Box::pin(logs::fail2ban_finds_each_failed_login_by_its_client_and_nothing_else(
                    backend,
                ))
            },
        );
        trials.push(match logs::missing_fail2ban() {
            Some(why) if !in_ci => trial.with_ignored_flag(true).with_kind(format!("skipped: {why}")),
            _ => trial,
        });
    }
    // Inbound mail by SMTP/LMTP: the tests deliver with Debian's swaks (and
    // lettre); without swaks they are skipped with the reason, except with
    // CI=true, where they must run.
    let sending_tests = suite![
        inbound_smtp::with_a_bounce_domain_every_message_leaves_with_a_return_path_naming_it,
        inbound_smtp::without_a_bounce_domain_mail_leaves_as_before,
        inbound_smtp::connections_past_the_limit_get_421_until_one_closes,
        inbound_smtp::a_worker_process_signs_return_paths_with_the_key_every_process_shares,
        inbound_smtp::a_silent_client_times_out_and_stopping_closes_idle_connections_with_421,
    ];
    let swaks_tests = suite![
        inbound_smtp::a_dsn_for_a_digest_delivered_with_swaks_bounces_that_reader,
        inbound_smtp::a_complaint_through_the_listener_unsubscribes_the_reader_and_marks_them,
        inbound_smtp::an_issues_page_counts_what_came_back_and_lists_its_recipients,
        inbound_smtp::mail_to_the_mailto_in_list_unsubscribe_unsubscribes_the_reader,
        inbound_smtp::recipients_that_are_not_ours_get_550_and_nothing_is_stored,
        inbound_smtp::an_oversize_message_gets_552_declared_or_counted_and_the_connection_goes_on,
        inbound_smtp::lmtp_answers_once_for_each_recipient_it_took,
        inbound_smtp::a_message_the_database_cannot_store_gets_451_and_its_retry_is_stored,
    ];
    let missing_swaks = inbound_smtp::missing_swaks();
    for backend in Backend::all() {
        for (name, test) in &sending_tests {
            trials.push(helpers::trial(backend.clone(), name, *test));
        }
        for (name, test) in &swaks_tests {
            let trial = helpers::trial(backend.clone(), name, *test);
            trials.push(match &missing_swaks {
                Some(why) if !in_ci => trial.with_ignored_flag(true).with_kind(format!("skipped: {why}")),
                _ => trial,
            });
        }
    }
    // The SES webhook test signs with Python's cryptography; skipped with
    // the reason without it, and must run with CI=true.
    for backend in Backend::all() {
        let trial = helpers::trial(
            backend,
            "inbound_webhooks::ses_notifications_are_checked_against_the_sns_certificate_stored_once_and_applied",
            |backend| {
                Box::pin(
                    inbound_webhooks::ses_notifications_are_checked_against_the_sns_certificate_stored_once_and_applied(
                        backend,
                    ),
                )
            },
        );
        trials.push(match inbound_webhooks::missing_cryptography() {
            Some(why) if !in_ci => trial.with_ignored_flag(true).with_kind(format!("skipped: {why}")),
            _ => trial,
        });
    }
    // Only PostgreSQL sends notices.
    trials.push(helpers::trial(
        Backend::postgres(),
        "ops::commands_print_no_database_notices",
        |backend| Box::pin(ops::commands_print_no_database_notices(backend)),
    ));
    // SQLite is a file: only PostgreSQL's connections are sockets.
    trials.push(helpers::trial(
        Backend::postgres(),
        "db_connections::database_connections_send_each_statement_at_once",
        |backend| {
            Box::pin(db_connections::database_connections_send_each_statement_at_once(
                backend,
            ))
        },
    ));
    // The test takes its own PostgreSQL database down (SQLite has no server).
    trials.push(helpers::trial(
        Backend::postgres(),
        "liveness::a_database_outage_mid_issue_loses_no_outcome_and_everyone_reconnects",
        |backend| Box::pin(liveness::a_database_outage_mid_issue_loses_no_outcome_and_everyone_reconnects(backend)),
    ));
    // Only PostgreSQL has a dispatch lock to wait for.
    trials.push(helpers::trial(
        Backend::postgres(),
        "dispatch_door::staff_send_now_waits_for_a_dispatch_in_progress_in_another_process",
        |backend| Box::pin(dispatch_door::staff_send_now_waits_for_a_dispatch_in_progress_in_another_process(backend)),
    ));
    trials.push(libtest_mimic::Trial::test(
        "trust_proxy::trusted_proxies_come_from_a_toml_list_or_an_env_list_and_a_bad_entry_is_named",
        trust_proxy::trusted_proxies_come_from_a_toml_list_or_an_env_list_and_a_bad_entry_is_named,
    ));
    trials.push(libtest_mimic::Trial::test(
        "admin::production_needs_a_session_key_and_refuses_a_short_one",
        admin::production_needs_a_session_key_and_refuses_a_short_one,
    ));
    trials.push(libtest_mimic::Trial::test(
        "inbound_classify::every_fixture_prints_the_line_its_table_row_says",
        inbound_classify::every_fixture_prints_the_line_its_table_row_says,
    ));
    trials.push(libtest_mimic::Trial::test(
        "inbound_classify::an_unreadable_file_is_named_and_the_others_still_print",
        inbound_classify::an_unreadable_file_is_named_and_the_others_still_print,
    ));
    trials.push(libtest_mimic::Trial::test(
        "inbound_classify::it_needs_no_database",
        inbound_classify::it_needs_no_database,
    ));
    trials.push(libtest_mimic::Trial::test(
        "inbound_classify::outside_text_is_escaped_for_the_terminal",
        inbound_classify::outside_text_is_escaped_for_the_terminal,
    ));
    trials.push(libtest_mimic::Trial::test(
        "cli::help_lists_every_command",
        cli::help_lists_every_command,
    ));
    trials.push(libtest_mimic::Trial::test(
        "cli::a_bad_config_value_stops_the_process_naming_the_key",
        cli::a_bad_config_value_stops_the_process_naming_the_key,
    ));
    trials.push(libtest_mimic::Trial::test(
        "smtp_faults::the_sink_speaks_smtp_and_goes_down_and_back_on_its_port",
        smtp_faults::the_sink_speaks_smtp_and_goes_down_and_back_on_its_port,
    ));
    trials.push(libtest_mimic::Trial::test(
        "ops::config_check_prints_the_effective_configuration_with_secrets_masked",
        ops::config_check_prints_the_effective_configuration_with_secrets_masked,
    ));
    trials.push(libtest_mimic::Trial::test(
        "ops::the_sample_production_configuration_is_valid_once_its_secrets_are_set",
        ops::the_sample_production_configuration_is_valid_once_its_secrets_are_set,
    ));
    trials.push(libtest_mimic::Trial::test(
        "ops::bad_operations_settings_stop_the_process_naming_the_key",
        ops::bad_operations_settings_stop_the_process_naming_the_key,
    ));
    trials.push(libtest_mimic::Trial::test(
        "ops::an_unknown_key_stops_the_process_naming_the_key_meant",
        ops::an_unknown_key_stops_the_process_naming_the_key_meant,
    ));
    trials.push(libtest_mimic::Trial::test(
        "ops::an_unknown_environment_stops_the_process",
        ops::an_unknown_environment_stops_the_process,
    ));
    trials.push(libtest_mimic::Trial::test(
        "ops::a_bad_mail_setting_exits_2_from_every_role",
        ops::a_bad_mail_setting_exits_2_from_every_role,
    ));
    trials.push(libtest_mimic::Trial::test(
        "ops::output_to_a_closed_pipe_ends_the_command_quietly",
        ops::output_to_a_closed_pipe_ends_the_command_quietly,
    ));
    trials.push(libtest_mimic::Trial::test(
        "configuration::production_refuses_what_only_suits_trying_gazette_out",
        configuration::production_refuses_what_only_suits_trying_gazette_out,
    ));
    trials.push(libtest_mimic::Trial::test(
        "configuration::every_command_says_which_configuration_and_database_it_uses",
        configuration::every_command_says_which_configuration_and_database_it_uses,
    ));
    trials.push(libtest_mimic::Trial::test(
        "configuration::the_configuration_is_checked_before_the_database_is_touched",
        configuration::the_configuration_is_checked_before_the_database_is_touched,
    ));
    trials.push(libtest_mimic::Trial::test(
        "configuration::a_default_language_without_a_catalogue_is_refused",
        configuration::a_default_language_without_a_catalogue_is_refused,
    ));
    trials.push(libtest_mimic::Trial::test(
        "article_languages::a_digest_languages_value_other_than_all_or_reader_is_refused",
        article_languages::a_digest_languages_value_other_than_all_or_reader_is_refused,
    ));
    trials.push(libtest_mimic::Trial::test(
        "configuration::secrets_come_from_files_and_the_session_key_instructions_make_a_working_key",
        configuration::secrets_come_from_files_and_the_session_key_instructions_make_a_working_key,
    ));
    trials.push(libtest_mimic::Trial::test(
        "smtp_faults::the_sink_takes_auth_login_after_starttls",
        smtp_faults::the_sink_takes_auth_login_after_starttls,
    ));
    trials.push(libtest_mimic::Trial::test(
        "trust_secrets::database_passwords_never_reach_the_terminal_or_the_logs",
        trust_secrets::database_passwords_never_reach_the_terminal_or_the_logs,
    ));
    trials.push(libtest_mimic::Trial::test(
        "trust_dkim::a_dkim_key_that_cannot_be_read_or_parsed_stops_serve_and_worker",
        trust_dkim::a_dkim_key_that_cannot_be_read_or_parsed_stops_serve_and_worker,
    ));
    trials.push(libtest_mimic::Trial::test(
        "trust_dkim::mail_settings_that_cannot_hold_their_promise_stop_the_process",
        trust_dkim::mail_settings_that_cannot_hold_their_promise_stop_the_process,
    ));
    // The DKIM tests need dkimpy (installed by .ci/run): without it they are
    // listed as skipped, with the reason, except in CI, where they must run.
    if let Some(why) = trust_dkim::missing_verifier().filter(|_| !in_ci) {
        eprintln!("skipping the dkimpy tests: {why}");
        trials = trials
            .into_iter()
            .map(
                |trial| match trial.name().contains("trust_dkim::") && trial.name().contains("verif") {
                    true => trial.with_ignored_flag(true).with_kind(format!("skipped: {why}")),
                    false => trial,
                },
            )
            .collect();
    }
    trials.push(libtest_mimic::Trial::test(
        "trust_feeds::each_redirect_hop_is_checked_before_it_is_requested",
        trust_feeds::each_redirect_hop_is_checked_before_it_is_requested,
    ));
    trials.push(libtest_mimic::Trial::test(
        "trust_feeds::a_feed_that_never_answers_is_a_timeout",
        trust_feeds::a_feed_that_never_answers_is_a_timeout,
    ));
    // Backups: `gazette backup` and `restore` are for SQLite; PostgreSQL's
    // are the README's pg_dump and pg_restore.
    let [sqlite, _] = Backend::all();
    trials.push(helpers::trial(
        sqlite.clone(),
        "backup::a_backup_taken_while_serve_takes_signups_restores_into_a_fresh_directory",
        |backend| Box::pin(backup::a_backup_taken_while_serve_takes_signups_restores_into_a_fresh_directory(backend)),
    ));
    trials.push(helpers::trial(
        sqlite,
        "backup::restore_refuses_what_is_not_a_sound_gazette_backup",
        |backend| Box::pin(backup::restore_refuses_what_is_not_a_sound_gazette_backup(backend)),
    ));
    trials.push(helpers::trial(
        Backend::postgres(),
        "backup::the_readmes_pg_dump_and_pg_restore_bring_the_data_back",
        |backend| Box::pin(backup::the_readmes_pg_dump_and_pg_restore_bring_the_data_back(backend)),
    ));
    // systemd's own analysis of the shipped units: skipped with the reason
    // where systemd-analyze is missing, and must run with CI=true.
    let missing_systemd = deploy::missing_systemd_analyze();
    for (name, test) in [
        (
            "deploy::the_units_pass_systemd_analyze_verify_and_rate_ok_in_security",
            deploy::the_units_pass_systemd_analyze_verify_and_rate_ok_in_security as fn() -> _,
        ),
        (
            "deploy::the_dispatch_timer_fires_within_15_minutes_of_every_scheduled_run",
            deploy::the_dispatch_timer_fires_within_15_minutes_of_every_scheduled_run,
        ),
    ] {
        let trial = libtest_mimic::Trial::test(name, test);
        trials.push(match &missing_systemd {
            Some(why) if !in_ci => {
                eprintln!("skipping {name}: {why}");
                trial.with_ignored_flag(true).with_kind(format!("skipped: {why}"))
            }
            _ => trial,
        });
    }
    // Schemathesis (from PyPI, installed by .ci/run) against the running
    // API and its OpenAPI document: skipped with the reason without it, and
    // must run with CI=true.
    let missing_schemathesis = json_api::missing_schemathesis();
    for backend in Backend::all() {
        let trial = helpers::trial(
            backend,
            "json_api::schemathesis_finds_no_server_error_and_every_response_matches",
            |backend| {
                Box::pin(json_api::schemathesis_finds_no_server_error_and_every_response_matches(
                    backend,
                ))
            },
        );
        trials.push(match &missing_schemathesis {
            Some(why) if !in_ci => trial.with_ignored_flag(true).with_kind(format!("skipped: {why}")),
            _ => trial,
        });
    }
    libtest_mimic::run(&args, trials).exit();
}
