/* test-dsn.c - telling a bounce from everything else in the bounce mailbox: messages shaped
 * as Postfix and Microsoft Exchange write them, a delay notice, an out-of-office reply (which
 * says "Auto-Submitted: auto-replied" just as a bounce does), unrelated mail and garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dsn.h"

/* Postfix 3.7 (bounce(8)), CRLF as it arrives over IMAP */
static const char postfix[] =
        "Return-Path: <>\r\n"
        "Received: by mx.example.org (Postfix) id 4Qx1yZ2abc; Mon, 30 Nov 2026 10:00:02 +0000 (UTC)\r\n"
        "Date: Mon, 30 Nov 2026 10:00:02 +0000 (UTC)\r\n"
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "To: bounces@mecc.example.org\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        "\tboundary=\"4Qx1yZ2abc.1764496802/mx.example.org\"\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "Message-Id: <20261130100002.4Qx1yZ2abc@mx.example.org>\r\n"
        "\r\n"
        "This is a MIME-encapsulated message.\r\n"
        "\r\n"
        "--4Qx1yZ2abc.1764496802/mx.example.org\r\n"
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "This is the mail system at host mx.example.org.\r\n"
        "\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients. It's attached below.\r\n"
        "\r\n"
        "<jo.bloggs@example.net>: host mx.example.net[192.0.2.7] said: 550 5.1.1\r\n"
        "    <jo.bloggs@example.net>: Recipient address rejected: User unknown in virtual\r\n"
        "    mailbox table (in reply to RCPT TO command)\r\n"
        "\r\n"
        "--4Qx1yZ2abc.1764496802/mx.example.org\r\n"
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n"
        "X-Postfix-Queue-ID: 4Qx1yZ2abc\r\n"
        "X-Postfix-Sender: rfc822; bounces@mecc.example.org\r\n"
        "Arrival-Date: Mon, 30 Nov 2026 10:00:01 +0000 (UTC)\r\n"
        "\r\n"
        "Final-Recipient: rfc822; jo.bloggs@example.net\r\n"
        "Original-Recipient: rfc822;jo.bloggs@example.net\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Remote-MTA: dns; mx.example.net\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <jo.bloggs@example.net>: Recipient address\r\n"
        "    rejected: User unknown in virtual mailbox table\r\n"
        "\r\n"
        "--4Qx1yZ2abc.1764496802/mx.example.org\r\n"
        "Content-Description: Undelivered Message\r\n"
        "Content-Type: message/rfc822\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "From: MECC Training <mecc@example.org>\r\n"
        "To: Jo Bloggs <jo.bloggs@example.net>\r\n"
        "Subject: Your place: MECC training\r\n"
        "Message-ID: <confirmation.17.42@mecc.example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "\r\n"
        "Dear Jo,\r\n"
        "--4Qx1yZ2abc.1764496802/mx.example.org--\r\n";

/* Exchange Online: a multipart/alternative human part inside, numeric status with a
 * two-digit detail, and only the returned message's headers */
static const char exchange[] =
        "From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.com>\r\n"
        "To: <bounces@mecc.example.org>\r\n"
        "Date: Mon, 30 Nov 2026 10:05:00 +0000\r\n"
        "Content-Type: multipart/report; report-type=\"delivery-status\";\r\n"
        "\tboundary=\"b2d9a0f2-7c1e-4b8e-9d1f-0e8b7c6a5d4e\"\r\n"
        "X-MS-Exchange-Message-Is-Ndr:\r\n"
        "Content-Language: en-US\r\n"
        "Message-ID: <a1b2c3d4-e5f6@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>\r\n"
        "In-Reply-To: <joining.9.42@mecc.example.org>\r\n"
        "Subject: Undeliverable: Joining details: MECC training\r\n"
        "MIME-Version: 1.0\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "\r\n"
        "--b2d9a0f2-7c1e-4b8e-9d1f-0e8b7c6a5d4e\r\n"
        "Content-Type: multipart/alternative; differences=Content-Type;\r\n"
        "\tboundary=\"7f3e8d2c-1a0b-4c5d-8e9f-a1b2c3d4e5f6\"\r\n"
        "\r\n"
        "--7f3e8d2c-1a0b-4c5d-8e9f-a1b2c3d4e5f6\r\n"
        "Content-Type: text/plain; charset=\"us-ascii\"\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "Your message to sam.smith@contoso.com couldn't be delivered.\r\n"
        "Final-Recipient: rfc822;decoy@contoso.com\r\n"
        "--7f3e8d2c-1a0b-4c5d-8e9f-a1b2c3d4e5f6\r\n"
        "Content-Type: text/html; charset=\"us-ascii\"\r\n"
        "\r\n"
        "<html><body>Your message couldn't be delivered.</body></html>\r\n"
        "--7f3e8d2c-1a0b-4c5d-8e9f-a1b2c3d4e5f6--\r\n"
        "\r\n"
        "--b2d9a0f2-7c1e-4b8e-9d1f-0e8b7c6a5d4e\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com\r\n"
        "Received-From-MTA: dns;relay.example.org\r\n"
        "Arrival-Date: Mon, 30 Nov 2026 10:04:58 +0000\r\n"
        "\r\n"
        "Final-Recipient: rfc822;sam.smith@contoso.com\r\n"
        "Action: failed\r\n"
        "Status: 5.1.10\r\n"
        "Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup\r\n"
        "\r\n"
        "--b2d9a0f2-7c1e-4b8e-9d1f-0e8b7c6a5d4e\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        "From: MECC Training <mecc@example.org>\r\n"
        "To: Sam Smith <sam.smith@contoso.com>\r\n"
        "Subject: Joining details: MECC training\r\n"
        "Message-ID:\r\n"
        "\t<joining.9.42@mecc.example.org>\r\n"
        "\r\n"
        "--b2d9a0f2-7c1e-4b8e-9d1f-0e8b7c6a5d4e--\r\n";

/* Postfix's delay warning, LF line ends as a Maildir file holds them */
static const char delayed[] =
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\n"
        "Subject: Delayed Mail (still being retried)\n"
        "Auto-Submitted: auto-replied\n"
        "Content-Type: multipart/report; report-type=delivery-status;\n"
        "\tboundary=\"D1.1764496802/mx.example.org\"\n"
        "\n"
        "--D1.1764496802/mx.example.org\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "This is a warning only. You do not need to resend your message.\n"
        "\n"
        "--D1.1764496802/mx.example.org\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        "Reporting-MTA: dns; mx.example.org\n"
        "\n"
        "Final-Recipient: rfc822; jo.bloggs@example.net\n"
        "Action: delayed\n"
        "Status: 4.4.1\n"
        "Diagnostic-Code: X-Postfix; connect to mx.example.net[192.0.2.7]:25: Connection\n"
        "    timed out\n"
        "Will-Retry-Until: Sat, 5 Dec 2026 10:00:01 +0000 (UTC)\n"
        "\n"
        "--D1.1764496802/mx.example.org\n"
        "Content-Type: text/rfc822-headers\n"
        "\n"
        "Message-ID: <confirmation.17.42@mecc.example.org>\n"
        "\n"
        "--D1.1764496802/mx.example.org--\n";

static const char ooo[] =
        "From: Jo Bloggs <jo.bloggs@example.net>\r\n"
        "To: bounces@mecc.example.org\r\n"
        "Subject: Automatic reply: Your place: MECC training\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "X-Auto-Response-Suppress: All\r\n"
        "In-Reply-To: <confirmation.17.42@mecc.example.org>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "I am out of the office until Monday. Action: failed\r\n"
        "Status: 5.1.1\r\n";

static const char unrelated[] =
        "From: someone@example.com\r\n"
        "Subject: report\r\n"
        "Content-Type: multipart/report; report-type=disposition-notification; boundary=x\r\n"
        "\r\n"
        "--x\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Final-Recipient: rfc822; jo.bloggs@example.net\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "--x--\r\n";

static dsn_t *parse(const char *s, size_t n)
{
        dsn_t *d = NULL;

        assert_int_equal(dsn_parse(s, n, &d), 1);
        assert_non_null(d);
        return d;
}

static void not_dsn(const char *s, size_t n)
{
        dsn_t *d = (dsn_t *) 1;

        assert_int_equal(dsn_parse(s, n, &d), 0);
        assert_null(d);
}

static void test_postfix(void **state)
{
        (void) state;
        dsn_t *d = parse(postfix, strlen(postfix));

        assert_int_equal(d->n_recipients, 1);
        assert_string_equal(d->recipients[0].action, "failed");
        assert_string_equal(d->recipients[0].status, "5.1.1");
        assert_string_equal(d->recipients[0].final_recipient, "jo.bloggs@example.net");
        assert_string_equal(d->recipients[0].diagnostic,
                            "smtp; 550 5.1.1 <jo.bloggs@example.net>: Recipient address rejected: "
                            "User unknown in virtual mailbox table");
        assert_true(dsn_recipient_failed(&d->recipients[0]));
        /* the returned message's, not the bounce's own */
        assert_string_equal(d->message_id, "<confirmation.17.42@mecc.example.org>");
        dsn_free(d);
}

static void test_exchange(void **state)
{
        (void) state;
        dsn_t *d = parse(exchange, strlen(exchange));

        /* the decoy in the human part is not a recipient */
        assert_int_equal(d->n_recipients, 1);
        assert_string_equal(d->recipients[0].final_recipient, "sam.smith@contoso.com");
        assert_string_equal(d->recipients[0].status, "5.1.10");
        assert_true(dsn_recipient_failed(&d->recipients[0]));
        assert_string_equal(d->message_id, "<joining.9.42@mecc.example.org>");
        dsn_free(d);
}

static void test_delayed(void **state)
{
        (void) state;
        dsn_t *d = parse(delayed, strlen(delayed));

        assert_int_equal(d->n_recipients, 1);
        assert_string_equal(d->recipients[0].action, "delayed");
        assert_string_equal(d->recipients[0].status, "4.4.1");
        assert_false(dsn_recipient_failed(&d->recipients[0]));
        assert_string_equal(d->message_id, "<confirmation.17.42@mecc.example.org>");
        dsn_free(d);
}

/* cut short after the delivery-status part (the reader fetches a bounded prefix) */
static void test_truncated(void **state)
{
        (void) state;
        const char *cut = strstr(postfix, "Content-Description: Undelivered");
        dsn_t *d = parse(postfix, (size_t) (cut - postfix));

        assert_true(dsn_recipient_failed(&d->recipients[0]));
        assert_null(d->message_id);
        dsn_free(d);
}

/* Original-Message-ID stands in when no returned message is attached; several recipients */
static void test_original_id(void **state)
{
        (void) state;
        static const char m[] =
                "Content-Type: Multipart/Report; boundary=b; Report-Type=delivery-status\n"
                "\n"
                "--b\n"
                "Content-Type: message/delivery-status\n"
                "\n"
                "Original-Message-ID: <roster.3.1@mecc.example.org>\n"
                "\n"
                "Final-Recipient: rfc822; <a@example.net>\n"
                "Action: Failed (bad address)\n"
                "Status: 5.0.0 (permanent failure)\n"
                "\n"
                "Final-Recipient: rfc822; b@example.net\n"
                "Action: failed\n"
                "Status: 4.2.2\n"
                "\n"
                "Final-Recipient: rfc822; c@example.net\n"
                "Action: failed\n"
                "Status: 5.x.1\n"
                "--b--\n";
        dsn_t *d = parse(m, strlen(m));

        assert_string_equal(d->message_id, "<roster.3.1@mecc.example.org>");
        assert_int_equal(d->n_recipients, 3);
        assert_string_equal(d->recipients[0].final_recipient, "a@example.net");
        assert_string_equal(d->recipients[0].action, "failed");
        assert_string_equal(d->recipients[0].status, "5.0.0");
        assert_true(dsn_recipient_failed(&d->recipients[0]));
        assert_false(dsn_recipient_failed(&d->recipients[1])); /* 4.x.x: temporary */
        assert_string_equal(d->recipients[2].status, "");       /* not a status */
        assert_false(dsn_recipient_failed(&d->recipients[2]));
        dsn_free(d);
}

static void test_not_dsn(void **state)
{
        (void) state;
        static const char garbage[] = "\x00\xff\r\n\r\n--\r\nContent-Type: multipart/report";
        static const char no_boundary[] =
                "Content-Type: multipart/report; report-type=delivery-status\r\n\r\nAction: failed\r\n";
        static const char no_status_part[] =
                "Content-Type: multipart/report; report-type=delivery-status; boundary=q\r\n\r\n"
                "--q\r\nContent-Type: text/plain\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\n"
                "Status: 5.1.1\r\n--q--\r\n";

        not_dsn(ooo, strlen(ooo));
        not_dsn(unrelated, strlen(unrelated));
        not_dsn(garbage, sizeof(garbage) - 1);
        not_dsn(no_boundary, strlen(no_boundary));
        not_dsn(no_status_part, strlen(no_status_part));
        not_dsn("", 0);
        not_dsn(NULL, 0);
        /* every prefix of every fixture parses without harm (ASan watches) */
        const char *all[] = { postfix, exchange, delayed, ooo };
        for (size_t i = 0; i < 4; i++)
                for (size_t n = 0; n <= strlen(all[i]); n++) {
                        dsn_t *d = NULL;
                        assert_true(dsn_parse(all[i], n, &d) >= 0);
                        dsn_free(d);
                }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_postfix),    cmocka_unit_test(test_exchange),
                cmocka_unit_test(test_delayed),    cmocka_unit_test(test_truncated),
                cmocka_unit_test(test_original_id), cmocka_unit_test(test_not_dsn),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
