"""Fill an empty help desk with realistic demo data and print the demo logins.

    python manage.py demo_data [--tickets 300] [--seed 2024]

Everything goes through the services (`accounts.services`, `tickets.services`), so the demo
has the threads, events and permissions real use would give. The services stamp the current
time; after each ticket's story is played, its timestamps are moved into the past (the last
~90 days) with bulk updates, keeping every entry and event in its order after the ticket's
creation. The output is deterministic for a given seed, apart from random ticket numbers and
the current date.
"""

from __future__ import annotations

import bisect
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from accounts import permissions
from accounts.models import (
    Agent,
    Organization,
    OrganizationDomain,
    Role,
    User,
    UserEmail,
)
from accounts.services import agent_create, user_get_or_create_by_email
from mailgate.notifications import mail_out_suppressed
from routing.models import Department, HelpTopic, Team
from routing.services import department_default
from tickets.models import (
    Collaborator,
    EntryKind,
    Priority,
    Referral,
    Source,
    Thread,
    ThreadEntry,
    ThreadEvent,
    Ticket,
    TicketStatus,
)
from tickets.services import (
    TicketDraft,
    ticket_assign,
    ticket_claim,
    ticket_collaborator_add,
    ticket_message_add,
    ticket_note_add,
    ticket_open,
    ticket_priority_set,
    ticket_refer,
    ticket_reply,
    ticket_status_set,
    ticket_transfer,
)

DEFAULT_SEED = 2024
DEFAULT_TICKETS = 300
SPREAD_DAYS = 90

# --- who ------------------------------------------------------------------------------------

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "demo-admin-1"
AGENT_EMAIL, AGENT_PASSWORD = "agent@example.com", "demo-agent-1"
CUSTOMER_EMAIL, CUSTOMER_PASSWORD = "customer@example.com", "demo-customer-1"

# Departments: (name, parent name). "Support" comes from the routing migration.
DEPARTMENTS = [
    ("Support", None),
    ("Sales", None),
    ("Billing", None),
    ("IT Operations", None),
    ("Network", "IT Operations"),
]
SUPPORT, SALES, BILLING, ITOPS, NETWORK = "Support", "Sales", "Billing", "IT Operations", "Network"

# Help topics: name -> (department or None for the default one, priority, public, order).
# The first three come from the routing migration and are reused as they are.
TOPICS: dict[str, tuple[str | None, str, bool, int]] = {
    "General Inquiry": (None, "Normal", True, 1),
    "Feedback": (None, "Low", True, 2),
    "Report a Problem": (SUPPORT, "Normal", True, 3),
    "Billing question": (BILLING, "Normal", True, 4),
    "Sales inquiry": (SALES, "Normal", True, 5),
    "Outage": (ITOPS, "High", True, 6),
    "Network & VPN": (NETWORK, "Normal", True, 7),
    "Account review (internal)": (SALES, "Normal", False, 8),
}

# The knowledge base: categories (name, public, order, description) and articles
# (category, title, public, related help topics, markdown body).
KB_CATEGORIES = [
    ("Getting started", True, 1, "Your account, signing in and opening tickets."),
    ("Printing", True, 2, "Printers, drivers and print queues."),
    ("Network & VPN", True, 3, "Connecting from the office and from home."),
    ("Agent handbook", False, 4, "How the support team works (agents only)."),
]
KB_ARTICLES = [
    (
        "Getting started",
        "How to reset your password",
        True,
        ["General Inquiry"],
        "1. Open the sign-in page and choose **Forgot your password?**\n"
        "2. Enter the email address you use with us.\n"
        "3. Follow the link in the email within 24 hours.\n\n"
        "No email after ten minutes? Check the spam folder, then open a ticket.",
    ),
    (
        "Getting started",
        "Following a ticket without an account",
        True,
        ["General Inquiry"],
        "Choose **Check a ticket's status** on the home page and enter your email address "
        "and the ticket number: we email you a link that opens the ticket for a while.",
    ),
    (
        "Printing",
        "The printer says it is offline",
        True,
        ["Report a Problem"],
        "Most offline printers are asleep or lost their network address.\n\n"
        "- Wake the printer (press any button) and wait a minute.\n"
        "- Print a configuration page and compare its address with the one on your "
        "computer.\n- Remove the printer and add it again.\n\n"
        "Still offline? Open a ticket with the printer's name and a photo of its display.",
    ),
    (
        "Printing",
        "Clearing a paper jam",
        True,
        ["Report a Problem"],
        "Switch the printer off, open every door it has and pull the paper out *in the "
        "direction it travels*. Torn pieces left inside cause the next jam.",
    ),
    (
        "Network & VPN",
        "Connecting to the VPN from home",
        True,
        ["Network & VPN"],
        "Install the VPN client from the software centre, sign in with your work email "
        "and approve the prompt on your phone. If it keeps disconnecting, switch from "
        "Wi-Fi to a cable once to rule out the home network.",
    ),
    (
        "Agent handbook",
        "Escalating an outage",
        False,
        ["Outage"],
        "Set the priority to **Emergency**, assign the ticket to the Network Team and "
        "post a status note every 30 minutes until it is resolved.",
    ),
]
# Canned responses: title, department (None: every department), body with variables.
CANNED_RESPONSES = [
    (
        "Thanks, looking into it",
        None,
        "Hello {{ customer.first_name }},\n\nthank you for your message about "
        "\u201c{{ ticket.subject }}\u201d. We are looking into it and will get back to you "
        "soon.\n\n{{ agent.name }}",
    ),
    (
        "Need more details",
        None,
        "Hello {{ customer.first_name }},\n\nto help with ticket #{{ ticket.number }} we "
        "need a little more: when did it start, and what did you see on the screen?",
    ),
    (
        "Invoice copy sent",
        BILLING,
        "Hello {{ customer.first_name }},\n\nwe have sent a copy of the invoice to "
        "{{ customer.email }}.",
    ),
]

PRIORITIES = ["Emergency", "High", "Normal", "Low"]
LEVEL1, LEVEL2, NETTEAM = "Level I Support", "Level II Support", "Network Team"


@dataclass
class AgentSpec:
    email: str
    name: str
    department: str
    role: str
    extended: dict[str, str] = field(default_factory=dict)
    teams: list[str] = field(default_factory=list)
    on_vacation: bool = False
    assigned_only: bool = False
    what: str = ""


AGENTS = [
    AgentSpec(
        AGENT_EMAIL,
        "Sam Agent",
        SUPPORT,
        "All Access",
        extended={BILLING: "Limited Access"},
        teams=[LEVEL1],
        what="Agent: Support (All Access), Billing (Limited Access), lead of Level I",
    ),
    AgentSpec(
        "priya@example.com",
        "Priya Patel",
        SUPPORT,
        "Expanded Access",
        extended={BILLING: "Expanded Access", SALES: "Expanded Access"},
        teams=[LEVEL1, LEVEL2],
        what="Agent: Support, Billing and Sales (Expanded Access), lead of Level II",
    ),
    AgentSpec(
        "lena@example.com",
        "Lena Fischer",
        SALES,
        "Limited Access",
        what="Agent: Sales (Limited Access: no closing, no editing)",
    ),
    AgentSpec(
        "omar@example.com",
        "Omar Haddad",
        ITOPS,
        "All Access",
        extended={NETWORK: "All Access"},
        teams=[LEVEL2, NETTEAM],
        what="Agent: IT Operations and Network (All Access)",
    ),
    AgentSpec(
        "grace@example.com",
        "Grace Kim",
        NETWORK,
        "Expanded Access",
        teams=[NETTEAM],
        on_vacation=True,
        what="Agent: IT Operations / Network (Expanded Access), on vacation",
    ),
    AgentSpec(
        "tom@example.com",
        "Tom Becker",
        SUPPORT,
        "View Only",
        teams=[LEVEL1],
        what="Agent: Support (View Only: reads and adds notes)",
    ),
    AgentSpec(
        "rita@example.com",
        "Rita Gomez",
        SUPPORT,
        "All Access",
        teams=[LEVEL1],
        assigned_only=True,
        what="Agent: Support (All Access), sees only tickets assigned to her or her team",
    ),
]
TEAM_LEADS = {LEVEL1: AGENT_EMAIL, LEVEL2: "priya@example.com", NETTEAM: "omar@example.com"}
DEPARTMENT_MANAGERS = {
    SUPPORT: AGENT_EMAIL,
    BILLING: "priya@example.com",
    SALES: "lena@example.com",
    ITOPS: "omar@example.com",
    NETWORK: "grace@example.com",
}

ORGANIZATIONS = [
    # name, domain, share tickets, notes
    ("Acme Corp", "acme.example", True, "Business plan, 120 seats. Renewal in March."),
    ("Globex", "globex.example", False, "Enterprise plan. Security reviews go through IT."),
]
ACME_PEOPLE = [
    "Alice Johnson",
    "Brian O'Neill",
    "Chloe Martin",
    "Daniel Novak",
    "Elena Rossi",
    "Farid Rahman",
    "Hannah Berg",
    "Ivan Petrov",
    "Julia Santos",
    "Kevin Walsh",
    "Laura Schmidt",
]
GLOBEX_PEOPLE = [
    "Mateo Garcia",
    "Nina Kowalski",
    "Oliver Brown",
    "Paula Silva",
    "Quentin Dubois",
    "Rosa Jimenez",
    "Samuel Okafor",
    "Tara Singh",
    "Uma Iyer",
    "Victor Lindqvist",
]
INDEPENDENT_PEOPLE = [
    "Wendy Clarke",
    "Xavier Moreau",
    "Yara Nasser",
    "Zoe Turner",
    "Aaron Blake",
    "Bianca Conti",
    "Carlos Mendes",
    "Diana Popescu",
    "Ethan Wright",
    "Fatima Zahra",
]
INDEPENDENT_DOMAINS = ["example.net", "example.org", "mail.example", "post.example"]
PORTAL_EVERY = 6  # every sixth of these customers has a portal account


def customer_email(name: str, domain: str) -> str:
    return ".".join(part.lower().replace("'", "") for part in name.split()) + "@" + domain


PORTAL_CUSTOMER = customer_email(ACME_PEOPLE[0], "acme.example")
SPAM_SENDER = ("lucky-winner@prizes.example", "Prize Department")

# --- what: ticket stories -------------------------------------------------------------------

OPEN, IN_PROGRESS, WAITING = "Open", "In Progress", "Waiting on Customer"
RESOLVED, CLOSED, ARCHIVED, DELETED = "Resolved", "Closed", "Archived", "Deleted"
# Every default status, in the order the first tickets take them so that even a small demo
# shows each one.
OUTCOMES = [OPEN, IN_PROGRESS, WAITING, RESOLVED, CLOSED, ARCHIVED, DELETED]
OUTCOME_WEIGHTS = {OPEN: 18, IN_PROGRESS: 14, WAITING: 12, RESOLVED: 14, CLOSED: 30, ARCHIVED: 12}
# How old (days) a ticket that ended in each status may be.
OUTCOME_AGES = {
    OPEN: (0.02, 12),
    IN_PROGRESS: (0.3, 20),
    WAITING: (1, 25),
    RESOLVED: (2, 40),
    CLOSED: (4, SPREAD_DAYS - 2),
    ARCHIVED: (45, SPREAD_DAYS),
    DELETED: (1, 60),
}
SOURCE_WEIGHTS = {Source.WEB: 40, Source.EMAIL: 40, Source.PHONE: 10, Source.API: 10}


@dataclass
class Category:
    department: str
    topic: str
    weight: int
    # (subject, body) written by the customer; bodies are plain text.
    openings: list[tuple[str, str]]
    first_replies: list[str]
    questions: list[str]  # an agent asks for what they need
    details: list[str]  # the customer's answer
    solutions: list[str]


CATEGORIES: dict[str, Category] = {
    "account": Category(
        SUPPORT,
        "Report a Problem",
        18,
        [
            (
                "Can't log in after password reset",
                "Hi,\n\nI reset my password this morning, but the new one is rejected on the "
                "login page. I tried twice and cleared my browser cache.\n\nCan you help?\n\n"
                "{first}",
            ),
            (
                "Password reset email never arrives",
                "Hello,\n\nI requested a password reset three times for {email}, but nothing "
                "arrives, not even in the spam folder.\n\nThanks,\n{first}",
            ),
            (
                "Account locked after too many attempts",
                "My account got locked after I mistyped my password a few times. I need it "
                "for a customer call at {time} today. Please unlock it.\n\n{first}",
            ),
            (
                "Two-factor codes not accepted",
                "Since I switched phones, the codes from my authenticator app are refused. "
                "I still have the old phone but it doesn't turn on.\n\nRegards,\n{first}",
            ),
            (
                "Single sign-on loops back to the sign-in page",
                "When I click 'Sign in with {org}', I end up on the sign-in page again. "
                "Colleagues have the same problem since this morning.\n\n{first}",
            ),
            (
                "Change the email address on my account",
                "Hi, my address is changing because of a rebranding. Could you move my "
                "account from {email} to a new address? I can confirm from both.\n\n{first}",
            ),
        ],
        [
            "Hi {first},\n\nThanks for reaching out. I've cleared the lock on your account "
            "and sent a fresh reset link to **{email}**. The link is valid for 24 hours.\n\n"
            "Let me know whether that works.\n\nBest,\n{agent}",
            "Hi {first},\n\nSorry about the trouble signing in. I'm looking at your account "
            "now and will get back to you shortly.\n\n{agent}",
        ],
        [
            "Hi {first},\n\nCould you tell me which browser you use and send a screenshot of "
            "the error? The exact time you last tried would help me find it in our logs.\n\n"
            "Thanks,\n{agent}",
            "Hi {first},\n\nTo verify it's you, could you reply with the last four digits of "
            "the card on file or the date of your last invoice?\n\n{agent}",
        ],
        [
            "It's Chrome on Windows, the last attempt was at {time}. The message says "
            "'Invalid credentials' even though I copied the password from my manager.",
            "Here you go: the last invoice was {invoice}. I'm on Firefox, error ID {error_id}.",
        ],
        [
            "Hi {first},\n\nFound it: your account still had an old SSO binding that "
            "rejected the password. I removed it; you can sign in normally now.\n\n"
            "Best,\n{agent}",
            "Hi {first},\n\nI've reset your two-factor setup. On your next sign-in you'll be "
            "asked to scan a new QR code with your authenticator app.\n\n{agent}",
        ],
    ),
    "howto": Category(
        SUPPORT,
        "General Inquiry",
        14,
        [
            (
                "How do I export my data to CSV?",
                "Hi,\n\nI need all our records from last quarter in a spreadsheet for an "
                "audit. Is there an export function?\n\nThanks,\n{first}",
            ),
            (
                "Where can I change notification settings?",
                "I'm getting an email for every single update and it's too much. Where do I "
                "switch that to a daily digest?\n\n{first}",
            ),
            (
                "Question about user roles",
                "Hello, what is the difference between the Editor and the Manager role? "
                "We're onboarding {seats} new people at {org} next week.\n\n{first}",
            ),
            (
                "Is there an API rate limit?",
                "We're building an integration and want to know how many requests per minute "
                "we may send before being throttled.\n\nBest regards,\n{first}",
            ),
        ],
        [
            "Hi {first},\n\nGood question! Go to **Settings → Data → Export**, pick the date "
            "range and choose CSV. Large exports arrive by email within a few minutes.\n\n"
            "{agent}",
            "Hi {first},\n\nThanks for asking. I'm checking the details with our product "
            "team and will get back to you today.\n\n{agent}",
        ],
        [
            "Hi {first},\n\nWhich plan are you on, and do you need this for one user or for "
            "the whole team? The options differ.\n\n{agent}",
        ],
        [
            "We're on the Business plan and it's for the whole team at {org}.",
            "Just for me for now, but the rest of the team will probably want it too.",
        ],
        [
            "Hi {first},\n\nHere is the step-by-step guide: "
            "https://help.example/articles/{error_id}. In short: *Settings → Team → Roles*, "
            "then apply the change to everyone at once.\n\nCheers,\n{agent}",
            "Hi {first},\n\nThe limit is 600 requests per minute per API key; responses carry "
            "`X-RateLimit-Remaining` so you can back off in time.\n\n{agent}",
        ],
    ),
    "feature": Category(
        SUPPORT,
        "Feedback",
        8,
        [
            (
                "Feature request: dark mode",
                "Hi team,\n\nWe work late shifts and the bright interface is hard on the "
                "eyes. Any plans for a dark mode?\n\n{first}",
            ),
            (
                "Feature request: bulk edit",
                "It would save us hours if we could change the owner of many records at "
                "once instead of one by one.\n\n{first}, {org}",
            ),
            (
                "Suggestion: keyboard shortcuts",
                "Power users at {org} would love keyboard shortcuts for the common actions. "
                "Just an idea!\n\n{first}",
            ),
            (
                "Would love a Slack integration",
                "Is a Slack integration on the roadmap? Notifications in a channel would be "
                "much better than email for us.\n\n{first}",
            ),
        ],
        [
            "Hi {first},\n\nThank you for the suggestion! I've added it to our feature "
            "tracker and shared your use case with the product team.\n\n{agent}",
        ],
        [
            "Hi {first},\n\nCould you tell us a bit more about how your team would use it? "
            "Concrete examples help the product team prioritise.\n\n{agent}",
        ],
        [
            "Sure: about {seats} people would use it daily, mostly in the evening shift.",
            "We'd use it every day; right now we work around it with spreadsheets.",
        ],
        [
            "Hi {first},\n\nGood news: this is planned for the next quarter's release. I'll "
            "close this ticket for now; you'll see it in the release notes.\n\n{agent}",
        ],
    ),
    "billing": Category(
        BILLING,
        "Billing question",
        18,
        [
            (
                "Invoice {invoice} charged twice",
                "Hello,\n\nOur credit card was charged twice for invoice {invoice} "
                "({amount}). Please refund the duplicate charge.\n\nRegards,\n{first}\n{org}",
            ),
            (
                "Question about invoice {invoice}",
                "Hi, invoice {invoice} lists {seats} seats but we only have about half of "
                "that in use. Can you explain the count?\n\n{first}",
            ),
            (
                "Refund request for order {order}",
                "We cancelled order {order} within the trial period. When will the refund of "
                "{amount} arrive?\n\nThanks,\n{first}",
            ),
            (
                "Credit card payment failed",
                "We got an email that the payment for our subscription failed. The card is "
                "valid and has funds. What's going on?\n\n{first}",
            ),
            (
                "Please add our VAT number to invoices",
                "Our accounting needs the VAT ID on every invoice. Can you add it to the "
                "account of {org} and reissue {invoice}?\n\n{first}",
            ),
            (
                "Switch from monthly to annual billing",
                "We'd like to move to annual billing to get the discount. How does the "
                "proration work?\n\n{first}",
            ),
        ],
        [
            "Hi {first},\n\nThanks for contacting Billing. I'm reviewing invoice "
            "**{invoice}** and your payment history now.\n\n{agent}",
            "Hi {first},\n\nI can see the issue on our side and have passed it to our "
            "payments provider. I'll update you as soon as I hear back.\n\n{agent}",
        ],
        [
            "Hi {first},\n\nCould you send the last four digits of the card and the date of "
            "the charge as it appears on your statement?\n\n{agent}",
            "Hi {first},\n\nPlease send us the VAT number and the billing address exactly as "
            "they should appear on the invoice.\n\n{agent}",
        ],
        [
            "Card ending in 4242, charged on the 3rd and again on the 4th.",
            "VAT ID EU372000041, billing address: {org}, 1 Main Street, {city}.",
        ],
        [
            "Hi {first},\n\nThe duplicate charge of {amount} has been refunded. Depending on "
            "your bank it shows up within 5 to 10 business days.\n\n{agent}",
            "Hi {first},\n\nDone: the corrected invoice {invoice} is attached to your "
            "account under *Billing → Invoices*.\n\n{agent}",
        ],
    ),
    "sales": Category(
        SALES,
        "Sales inquiry",
        10,
        [
            (
                "Pricing for {seats} seats",
                "Hi,\n\nWe're evaluating tools for our team of {seats} people. What would "
                "the Business plan cost per year?\n\n{first}\n{org}",
            ),
            (
                "Request for a product demo",
                "Could we schedule a 30-minute demo next week? Our team lead and IT would "
                "join.\n\nThanks,\n{first}",
            ),
            (
                "Quote needed for the Enterprise plan",
                "Our procurement needs a formal quote for the Enterprise plan, {seats} seats, "
                "3-year term.\n\n{first}, {org}",
            ),
            (
                "Do you offer discounts for non-profits?",
                "We're a small charity. Is there a non-profit discount?\n\n{first}",
            ),
            (
                "Upgrade from Starter to Business plan",
                "We've outgrown the Starter plan. What happens to our data when we upgrade "
                "mid-cycle?\n\n{first}",
            ),
        ],
        [
            "Hi {first},\n\nThanks for your interest! I've prepared some numbers for "
            "{seats} seats and will send the quote shortly.\n\n{agent}",
            "Hi {first},\n\nHappy to help. Here is a link to book a slot that suits you: "
            "https://meet.example/sales.\n\n{agent}",
        ],
        [
            "Hi {first},\n\nHow many seats do you need at the start, and which features "
            "matter most to you?\n\n{agent}",
        ],
        [
            "About {seats} seats at the start, SSO and audit logs are a must.",
            "We'd start with {seats} seats; reporting is the main reason we're looking.",
        ],
        [
            "Hi {first},\n\nThe quote is on its way to {email}. It's valid for 30 days; "
            "reply here with any questions.\n\n{agent}",
            "Hi {first},\n\nYou're upgraded! Your data stays as it is, and the price "
            "difference is prorated on the next invoice.\n\n{agent}",
        ],
    ),
    "outage": Category(
        ITOPS,
        "Outage",
        10,
        [
            (
                "Site is down: 502 Bad Gateway",
                "URGENT: the portal returns 502 Bad Gateway for everyone at {org} since "
                "{time}. We can't work.\n\n{first}",
            ),
            (
                "API returning 500 errors since {time}",
                "Our integration gets HTTP 500 on every call since {time}. Request ID of one "
                "failure: {error_id}.\n\n{first}",
            ),
            (
                "Dashboard extremely slow today",
                "Loading the dashboard takes over a minute today. Yesterday it was fine.\n\n"
                "{first}",
            ),
            (
                "Emails from the platform are not delivered",
                "None of our users received notification emails since yesterday evening. "
                "Is there an outage?\n\n{first}",
            ),
            (
                "Webhooks stopped firing",
                "Our webhook endpoint hasn't received anything since {time}; the endpoint "
                "itself is up.\n\n{first}, {org}",
            ),
        ],
        [
            "Hi {first},\n\nThanks for the report. We're aware of elevated error rates and "
            "our on-call engineer is investigating. Updates follow here.\n\n{agent}",
            "Hi {first},\n\nI've reproduced the problem and raised it with our operations "
            "team as an incident.\n\n{agent}",
        ],
        [
            "Hi {first},\n\nCould you send the request IDs of a few failures and your "
            "account's region? That helps us narrow it down.\n\n{agent}",
        ],
        [
            "Two more request IDs: {error_id} and {order}. We're in the EU region.",
            "It still happens about every third request; region is US-East.",
        ],
        [
            "Hi {first},\n\nThe incident is fixed: a failed database failover caused the "
            "errors. Everything has been stable for two hours now. Sorry for the "
            "disruption!\n\n{agent}",
            "Hi {first},\n\nA stuck mail queue was the cause; it's flushed and the delayed "
            "emails have gone out.\n\n{agent}",
        ],
    ),
    "network": Category(
        NETWORK,
        "Network & VPN",
        12,
        [
            (
                "VPN disconnects every few minutes",
                "Hi,\n\nMy VPN connection drops every 5 to 10 minutes since the client update. "
                "I'm working from home today.\n\n{first}",
            ),
            (
                "Cannot connect to VPN from the {city} office",
                "Nobody in the {city} office can connect to the VPN. The client says "
                "'TLS handshake failed'.\n\n{first}",
            ),
            (
                "Wi-Fi in meeting room {room} keeps dropping",
                "The Wi-Fi in meeting room {room} drops during every video call.\n\n{first}",
            ),
            (
                "DNS not resolving internal hostnames",
                "Internal hostnames like intranet.{domain} don't resolve since this "
                "morning; public sites work.\n\n{first}",
            ),
            (
                "Firewall blocks the reporting portal",
                "Since the firewall change last night, the reporting portal times out from "
                "our network.\n\n{first}, {org}",
            ),
        ],
        [
            "Hi {first},\n\nThanks, I'm checking the VPN gateway logs for your "
            "connection.\n\n{agent}",
            "Hi {first},\n\nI've opened a change request with our network team; we'll look "
            "at the access point and firewall rules today.\n\n{agent}",
        ],
        [
            "Hi {first},\n\nCould you run `ipconfig /all` (or `ip addr`) and send us the "
            "output, plus the version of your VPN client?\n\n{agent}",
        ],
        [
            "Client version 5.2.1. Output attached below:\n\nIPv4 Address: 10.20.{room}.17\n"
            "DNS Servers: 10.0.0.53",
            "It's the client from last week's update. Restarting didn't help.",
        ],
        [
            "Hi {first},\n\nThe gateway had an MTU mismatch after the update. We fixed the "
            "profile; please reconnect and it should stay up.\n\n{agent}",
            "Hi {first},\n\nThe access point in room {room} was replaced; the firewall rule "
            "for the portal is restored too.\n\n{agent}",
        ],
    ),
    "internal": Category(
        SALES,
        "Account review (internal)",
        4,
        [
            (
                "Renewal call: {org} contract review",
                "Call with {first} about the renewal. They want a 3-year term, {seats} seats, "
                "and ask about a discount for paying upfront.",
            ),
            (
                "Quarterly account review with {first}",
                "Phone call with {first}. Usage is up; they may need {seats} more seats next "
                "quarter. Follow up with a proposal.",
            ),
        ],
        [
            "Hi {first},\n\nThank you for your time on the phone today. As promised, here is "
            "a summary of what we discussed; the proposal follows this week.\n\n{agent}",
        ],
        [
            "Hi {first},\n\nBefore I send the proposal: who should sign the order on your "
            "side?\n\n{agent}",
        ],
        [
            "Please address it to our CFO; I'm in copy.",
            "It's me, I have signing authority up to that amount.",
        ],
        [
            "Hi {first},\n\nThe signed renewal is in; thank you for another year with us!\n\n"
            "{agent}",
        ],
    ),
}
SPAM = (
    "Congratulations!!! You have been selected",
    "Dear customer,\n\nYou are the lucky winner of a brand new phone. Claim your prize now "
    "at http://prizes.invalid/claim before it expires!!!",
)

FOLLOW_UPS = [
    "Any update on this? It's starting to block our work.",
    "Hi, just checking in. Is there anything else you need from me?",
    "Adding one more detail: it also happens on my colleague's computer.",
    "Hello? We still haven't heard back.",
]
THANKS = [
    "That worked, thank you so much!",
    "Perfect, all good now. Thanks for the quick help!",
    "Confirmed, it's fixed on our side. Have a great day.",
]
STILL_BROKEN = [
    "Sorry, it's happening again since this morning.",
    "Unfortunately the problem is back. Same symptoms as before.",
]
SECOND_FIXES = [
    "Hi {first},\n\nThanks for letting us know. The first fix only covered part of the "
    "problem; I've applied the permanent one now. It should not come back.\n\n{agent}",
    "Hi {first},\n\nSorry about that! I found a second cause and corrected it as well.\n\n{agent}",
]
NOTES = [
    "Checked the logs: the errors started right after last night's deploy.",
    "Customer is on the Business plan; priority support applies.",
    "Called the customer, left a voicemail.",
    "Possibly the same root cause as the other reports this week.",
    "Don't promise a date yet, engineering is still investigating.",
    "The customer was friendly on the phone; they mostly need a workaround for now.",
    "Reproduced it on the staging environment.",
]
ESCALATION_NOTES = [
    "Escalating to Level II: this looks like a backend problem, not a user error.",
    "Out of my depth here, handing over to Level II.",
]
REFERRAL_NOTES = [
    "Billing here: the account is on the Business plan, no unpaid invoices.",
    "Had a look from our side: nothing unusual on the account.",
]
CLOSE_COMMENTS = [
    "Customer confirmed the fix.",
    "No reply for three days; closing.",
    "Solved.",
]
TRANSFER_COMMENTS = [
    "This is a billing question, moving it to the right team.",
    "Belongs to the specialists, transferring.",
    "Wrong department, transferring.",
]


# Ticket times the services stamp besides created_at and updated_at.
TICKET_TIMES = [
    "closed_at",
    "reopened_at",
    "first_response_at",
    "last_message_at",
    "last_response_at",
]


@dataclass
class Plan:
    outcome: str
    category: str
    owner: User | None
    source: str
    t0: datetime


@dataclass
class Step:
    gap: timedelta  # after the previous step
    run: Callable[[Any], Any]  # takes the ticket (None for the opening step)


def hours(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(hours=rng.uniform(low, high))


class DemoBuilder:
    """Creates the demo help desk; all randomness comes from one seeded `random.Random`."""

    def __init__(self, *, seed: int, tickets: int, now: datetime) -> None:
        # Demo content, not secrets: a seeded generator makes the demo reproducible.
        self.rng = random.Random(seed)  # noqa: S311
        self.ticket_count = tickets
        self.now = now
        self.since = now - timedelta(days=SPREAD_DAYS + 10)  # when the help desk "started"

    # --- setup ------------------------------------------------------------------------------

    def build(self) -> None:
        self.statuses = {status.name: status for status in TicketStatus.objects.all()}
        self.priorities = {priority.name: priority for priority in Priority.objects.all()}
        missing = [name for name in OUTCOMES if name not in self.statuses]
        missing += [name for name in PRIORITIES if name not in self.priorities]
        if missing:
            raise CommandError(
                f"The default statuses and priorities are missing ({', '.join(missing)}); "
                "run `manage.py migrate` on an empty database first."
            )
        self.roles = {role.name: role for role in Role.objects.all()}
        for name in {spec.role for spec in AGENTS} | {"Administrator"}:
            if name not in self.roles:
                raise CommandError(f'The role "{name}" is missing; run `manage.py migrate`.')

        self.created_at_backdate: list[tuple[type, list[int]]] = []
        self.casey_cc_done = self.casey_collab_done = False
        self._routing()
        self._people()
        self._staff_pools()
        self._tickets()
        self._knowledge_base()
        self._backdate_setup()

    def _routing(self) -> None:
        self.departments: dict[str, Department] = {}
        new_departments = []
        for name, parent in DEPARTMENTS:
            department, created = Department.objects.get_or_create(
                name=name, parent=self.departments.get(parent) if parent else None
            )
            self.departments[name] = department
            if created:
                new_departments.append(department.pk)
        self.created_at_backdate.append((Department, new_departments))
        self.default_department = department_default()

        self.topics: dict[str, HelpTopic] = {}
        new_topics = []
        for name, (department, priority, public, order) in TOPICS.items():
            topic = HelpTopic.objects.filter(name=name, parent=None).first()
            if topic is None:
                topic = HelpTopic.objects.create(
                    name=name,
                    department=self.departments[department] if department else None,
                    priority=self.priorities[priority],
                    is_public=public,
                    sort_order=order,
                )
                new_topics.append(topic.pk)
            self.topics[name] = topic
        self.created_at_backdate.append((HelpTopic, new_topics))

        self.teams: dict[str, Team] = {}
        new_teams = []
        for name in (LEVEL1, LEVEL2, NETTEAM):
            team, created = Team.objects.get_or_create(name=name)
            self.teams[name] = team
            if created:
                new_teams.append(team.pk)
        self.created_at_backdate.append((Team, new_teams))

    def _knowledge_base(self) -> None:
        """A few categories and articles for the portal's /kb/, and canned responses."""
        from kb.models import Article, ArticleStatus, CannedResponse
        from kb.models import Category as KbCategory
        from kb.services import article_save, canned_response_save, category_save

        if KbCategory.objects.exists():
            return
        categories = {}
        for name, public, order, description in KB_CATEGORIES:
            categories[name] = category_save(
                category=KbCategory(
                    name=name, is_public=public, sort_order=order, description=description
                ),
                by=self.admin,
            )
        for category, title, public, topics, body in KB_ARTICLES:
            article = Article(
                category=categories[category],
                title=title,
                body=body,
                is_public=public,
                status=ArticleStatus.PUBLISHED,
                author=self.admin,
            )
            article_save(
                article=article,
                by=self.admin,
                related_topics=[self.topics[name] for name in topics],
            )
        for title, department, body in CANNED_RESPONSES:
            canned_response_save(
                response=CannedResponse(
                    title=title,
                    body=body,
                    department=self.departments[department] if department else None,
                ),
                by=self.admin,
            )

    def _people(self) -> None:
        emails = [ADMIN_EMAIL, CUSTOMER_EMAIL, *(spec.email for spec in AGENTS)]
        taken = sorted(UserEmail.objects.filter(email__in=emails).values_list("email", flat=True))
        if taken:
            raise CommandError(
                f"These demo users already exist: {', '.join(taken)}. demo_data fills an "
                "empty help desk; use a fresh database."
            )
        # Staff. Passwords are hashed once and the hash is shared: hashing is the slow part.
        self.admin = User.objects.create_superuser(ADMIN_EMAIL, ADMIN_PASSWORD, name="Ada Admin")
        admin_agent = agent_create(
            user=self.admin,
            department=self.departments[SUPPORT],
            role=self.roles["Administrator"],
            teams=[self.teams[LEVEL2]],
            signature="Ada Admin\nHelp Desk administrator",
        )
        self.agents: list[User] = []
        self.by_email: dict[str, User] = {}
        profiles: dict[str, Agent] = {}
        for spec in AGENTS:
            if not self.agents:
                user = User.objects.create_user(spec.email, AGENT_PASSWORD, name=spec.name)
            else:
                user = User.objects.create_user(spec.email, None, name=spec.name)
                user.password = self.agents[0].password
                user.save(update_fields=["password"])
            profile = agent_create(
                user=user,
                department=self.departments[spec.department],
                role=self.roles[spec.role],
                extended={
                    self.departments[name]: self.roles[role] for name, role in spec.extended.items()
                },
                teams=[self.teams[name] for name in spec.teams],
                assigned_only=spec.assigned_only,
                signature=f"{spec.name}\n{spec.department} · Help Desk",
            )
            if spec.on_vacation:
                profile.on_vacation = True
                profile.save(update_fields=["on_vacation", "updated_at"])
            user.agent = profile
            profiles[spec.email] = profile
            self.agents.append(user)
            self.by_email[spec.email] = user
        self.level2 = [self.by_email[spec.email] for spec in AGENTS if LEVEL2 in spec.teams]
        for team_name, email in TEAM_LEADS.items():
            Team.objects.filter(pk=self.teams[team_name].pk).update(lead=profiles[email])
        for department_name, email in DEPARTMENT_MANAGERS.items():
            Department.objects.filter(pk=self.departments[department_name].pk).update(
                manager=profiles[email]
            )
        self.created_at_backdate.append(
            (Agent, [admin_agent.pk, *(profile.pk for profile in profiles.values())])
        )

        # Organizations and customers.
        self.organizations: dict[str, Organization] = {}
        for name, domain, share, notes in ORGANIZATIONS:
            organization, _created = Organization.objects.get_or_create(
                name=name, defaults={"share_tickets": share, "notes": notes}
            )
            OrganizationDomain.objects.get_or_create(domain=domain, organization=organization)
            self.organizations[name] = organization
        self.created_at_backdate.append(
            (Organization, [organization.pk for organization in self.organizations.values()])
        )
        self.casey = User.objects.create_user(
            CUSTOMER_EMAIL,
            CUSTOMER_PASSWORD,
            name="Casey Customer",
            organization=self.organizations["Acme Corp"],
        )
        self.customers: list[User] = []
        people = [(name, "acme.example") for name in ACME_PEOPLE]
        people += [(name, "globex.example") for name in GLOBEX_PEOPLE]
        people += [
            (name, INDEPENDENT_DOMAINS[i % len(INDEPENDENT_DOMAINS)])
            for i, name in enumerate(INDEPENDENT_PEOPLE)
        ]
        for i, (name, domain) in enumerate(people):
            # As if they had only emailed: found or created by address, joined by domain.
            customer = user_get_or_create_by_email(email=customer_email(name, domain), name=name)
            if i % PORTAL_EVERY == 0:  # a few also made a portal account
                customer.password = self.casey.password
                customer.save(update_fields=["password"])
            self.customers.append(customer)
        self.colleagues: dict[int | None, list[User]] = {}
        for customer in [self.casey, *self.customers]:
            self.colleagues.setdefault(customer.organization_id, []).append(customer)
        self.customer_weights = [self.rng.uniform(0.5, 3.0) for _ in self.customers]
        self.user_ids = [
            self.admin.pk,
            self.casey.pk,
            *(u.pk for u in self.agents + self.customers),
        ]

    def _staff_pools(self) -> None:
        """Who may do what in each department (superusers only when nobody else may)."""
        self.pools: dict[tuple[str, str], list[User]] = {}
        for name, department in self.departments.items():
            for permission in (
                "ticket.reply",
                "ticket.close",
                "ticket.assign",
                "ticket.edit",
                "ticket.transfer",
                "ticket.create",
                "ticket.refer",
                "ticket.delete",
            ):
                self.pools[name, permission] = [
                    agent for agent in self.agents if permissions.can(agent, permission, department)
                ]
            # Who reads the department's queue (and may add notes): not assigned-only agents.
            self.pools[name, "view"] = [
                agent
                for agent in self.agents
                if not agent.agent.assigned_only
                and department.pk in permissions.agent_scope(agent).roles_by_department
            ]

    def pool(self, department: str, permission: str, *, age: float = 99) -> list[User]:
        """Agents with `permission` in `department` that can pick up its tickets themselves."""
        agents = [
            agent
            for agent in self.pools[department, permission]
            if not agent.agent.assigned_only and not (agent.agent.on_vacation and age < 14)
        ]
        return agents or [self.admin]

    def handlers(self, department: str, age: float) -> list[User]:
        """Who may answer a ticket of the department (assigned-only agents need assigning)."""
        agents = [
            agent
            for agent in self.pools[department, "ticket.reply"]
            if permissions.can_be_assigned(agent, self.departments[department].pk)
            and not (agent.agent.on_vacation and age < 14)
        ]
        return agents or [self.admin]

    # --- tickets ----------------------------------------------------------------------------

    def _plans(self) -> list[Plan]:
        rng, n = self.rng, self.ticket_count
        categories = [name for name in CATEGORIES if name != "internal"]
        weights = [CATEGORIES[name].weight for name in categories]
        casey_every = max(1, (n - len(OUTCOMES)) // max(3, n // 40))
        casey_outcomes = [WAITING, OPEN, CLOSED, IN_PROGRESS, RESOLVED, ARCHIVED]
        plans = []
        casey_count = 0
        for i in range(n):
            if i < len(OUTCOMES):
                outcome = OUTCOMES[i]
            elif i % 100 == 50:
                outcome = DELETED
            else:
                outcome = rng.choices(list(OUTCOME_WEIGHTS), list(OUTCOME_WEIGHTS.values()))[0]
            source = rng.choices(list(SOURCE_WEIGHTS), list(SOURCE_WEIGHTS.values()))[0]
            category = rng.choices(categories, weights)[0]
            if i >= len(OUTCOMES) and (i - len(OUTCOMES)) % casey_every == 0:
                owner = self.casey
                outcome = casey_outcomes[casey_count % len(casey_outcomes)]
                casey_count += 1
                source = Source.WEB if casey_count % 3 else Source.EMAIL
            elif i in (1, 2):  # an Acme colleague's shared ticket, a Globex one
                owner = self.colleagues[self.organizations["Acme Corp" if i == 1 else "Globex"].pk][
                    1 + rng.randrange(3)
                ]
            else:
                owner = rng.choices(self.customers, self.customer_weights)[0]
            if source == Source.PHONE and outcome != DELETED and rng.random() < 0.4:
                category = "internal"
            if outcome == DELETED:
                owner, source, category = None, Source.EMAIL, "spam"
            low, high = OUTCOME_AGES[outcome]
            t0 = self.now - timedelta(days=rng.uniform(low, high))
            plans.append(Plan(outcome, category, owner, source, t0))
        plans.sort(key=lambda plan: plan.t0)
        return plans

    def _tickets(self) -> None:
        self.first_seen: dict[int, datetime] = {}
        for plan in self._plans():
            ctx: dict[str, Any] = {"collaborators": [], "cc": False}
            steps = (
                self._spam_story(plan, ctx) if plan.category == "spam" else self._story(plan, ctx)
            )
            self._play(plan, steps, ctx)

    def _play(self, plan: Plan, steps: list[Step], ctx: dict[str, Any]) -> None:
        """Run the steps one by one, moving what each wrote to the step's planned time."""
        total = sum((step.gap for step in steps[1:]), timedelta())
        room = self.now - timedelta(minutes=2) - plan.t0
        scale = min(1.0, room / total) if total else 1.0
        planned, moment = [], plan.t0
        for i, step in enumerate(steps):
            if i:
                moment += max(step.gap * scale, timedelta(seconds=1))
            planned.append(moment)

        # Each step's rows get the step's planned time as soon as it has run: everything a
        # step wrote is stamped at or after the moment it started, earlier steps are past.
        marks: list[datetime] = []
        ticket: Ticket | None = None
        thread_id = 0
        for step, when in zip(steps, planned, strict=True):
            mark = timezone.now()
            marks.append(mark)
            opening = ticket is None
            result = step.run(ticket)
            if opening:
                ticket, thread_id = result, result.thread.pk
                Thread.objects.filter(pk=thread_id).update(created_at=when)
            if opening or isinstance(result, ThreadEntry):
                ThreadEntry.objects.filter(thread_id=thread_id, created_at__gte=mark).update(
                    created_at=when, updated_at=when
                )
            ThreadEvent.objects.filter(thread_id=thread_id, created_at__gte=mark).update(
                created_at=when
            )
            side = type(result) if isinstance(result, Collaborator | Referral) else None
            if side is not None or (opening and ctx["cc"]):
                (side or Collaborator).objects.filter(ticket=ticket, created_at__gte=mark).update(
                    created_at=when
                )
        assert ticket is not None

        def at(real: datetime) -> datetime:
            return planned[max(bisect.bisect_right(marks, real) - 1, 0)]

        ticket.refresh_from_db(fields=TICKET_TIMES)
        times = {"created_at": planned[0], "updated_at": planned[-1]}
        for name in TICKET_TIMES:
            value = getattr(ticket, name)
            if value is not None:
                times[name] = at(value)
        Ticket.objects.filter(pk=ticket.pk).update(**times)
        if plan.owner is None:
            self.first_seen.setdefault(ticket.user_id, planned[0])

    def _values(self, plan: Plan, owner: User) -> dict[str, Any]:
        rng = self.rng
        organization = self.org_name(owner)
        return {
            "first": owner.get_short_name(),
            "email": owner.email,
            "domain": owner.email.rpartition("@")[2],
            "org": organization or "our company",
            "invoice": f"INV-{plan.t0:%Y}-{rng.randrange(1000, 9999)}",
            "order": f"ORD-{rng.randrange(100000, 999999)}",
            "amount": f"${rng.choice([49, 99, 149, 299, 499, 1200]):,}.00",
            "seats": rng.choice([5, 12, 25, 40, 60, 150]),
            "city": rng.choice(["Berlin", "Lisbon", "Toronto", "Austin", "Singapore"]),
            "room": rng.randrange(101, 420),
            "time": f"{rng.randrange(7, 18)}:{rng.choice(['00', '15', '30', '45'])}",
            "error_id": f"{rng.getrandbits(40):010x}",
        }

    def org_name(self, user: User) -> str:
        for organization in self.organizations.values():
            if organization.pk == user.organization_id:
                return organization.name
        return ""

    def _draft(self, plan: Plan, owner: User, subject: str, body: str, topic: HelpTopic) -> Any:
        draft = TicketDraft(
            subject=subject,
            body=body,
            user=owner,
            name=owner.name,
            help_topic=topic,
            source=plan.source,
        )
        if plan.source == Source.EMAIL:
            draft.message_id = f"<{self.rng.getrandbits(64):016x}@{owner.email.split('@')[1]}>"
            draft.headers = {"X-Mailer": self.rng.choice(["Outlook 16.0", "Apple Mail", "Gmail"])}
        return draft

    def _spam_story(self, plan: Plan, ctx: dict[str, Any]) -> list[Step]:
        rng = self.rng
        email, name = SPAM_SENDER
        noter = rng.choice(self.pool(SUPPORT, "view"))
        deleter = rng.choice(self.pool(SUPPORT, "ticket.delete"))
        draft = TicketDraft(
            subject=SPAM[0],
            body=SPAM[1],
            email=email,
            name=name,
            source=Source.EMAIL,
            message_id=f"<{rng.getrandbits(64):016x}@prizes.example>",
        )
        return [
            Step(timedelta(0), lambda _t: ticket_open(draft=draft)),
            Step(
                hours(rng, 0.2, 5),
                lambda t: ticket_note_add(ticket=t, by=noter, body="Spam. Deleting."),
            ),
            Step(
                hours(rng, 0.01, 0.1),
                lambda t: ticket_status_set(
                    ticket=t, by=deleter, status=self.statuses[DELETED], comment="Spam"
                ),
            ),
        ]

    def _story(self, plan: Plan, ctx: dict[str, Any]) -> list[Step]:
        """The ticket's life as a list of steps, every choice made now (so it is seeded)."""
        rng = self.rng
        owner = plan.owner
        assert owner is not None
        category = CATEGORIES[plan.category]
        age = (self.now - plan.t0).total_seconds() / 86400
        values = self._values(plan, owner)
        subject, body = rng.choice(category.openings)
        subject, body = subject.format(**values), body.format(**values)

        final = category.department
        topic = self.topics[category.topic]
        misrouted = (
            plan.category in ("billing", "sales", "network")
            and plan.source in (Source.WEB, Source.EMAIL)
            and rng.random() < 0.15
        )
        if misrouted:
            topic = self.topics["Outage" if plan.category == "network" else "General Inquiry"]
        department = self.department_of(topic)
        statuses = self.statuses
        steps: list[Step] = []

        def say(text: str, agent: User) -> str:
            return text.format(**values, agent=agent.get_short_name())

        # Opening.
        cc = []
        colleagues = [u for u in self.colleagues.get(owner.organization_id, []) if u != owner]
        if owner.organization_id and colleagues and rng.random() < 0.08:
            cc = [rng.choice(colleagues)]
        if owner == self.casey and not self.casey_cc_done:
            cc, self.casey_cc_done = [rng.choice(colleagues)], True
        if (
            owner.organization_id == self.organizations["Acme Corp"].pk
            and owner != self.casey
            and not self.casey_collab_done
        ):
            cc, self.casey_collab_done = [self.casey], True
        ctx["collaborators"] = list(cc)
        ctx["cc"] = bool(cc)
        draft = self._draft(plan, owner, subject, body, topic)
        draft.collaborators = [user.email for user in cc]
        if plan.source == Source.PHONE:
            opener: User | None = rng.choice(self.pool(department, "ticket.create", age=age))
        elif plan.source == Source.WEB and owner.has_usable_password():
            opener = owner
        else:
            opener = None
        steps.append(Step(timedelta(0), lambda _t: ticket_open(draft=draft, by=opener)))

        def customer_says(gap: timedelta, text: str, *, collaborator_ok: bool = True) -> None:
            writer = owner
            if collaborator_ok and ctx["collaborators"] and rng.random() < 0.4:
                writer = rng.choice(ctx["collaborators"])
            source = Source.EMAIL
            if writer.has_usable_password() and rng.random() < 0.6:
                source = Source.WEB
            steps.append(
                Step(
                    gap,
                    lambda t: ticket_message_add(
                        ticket=t, user=writer, body=text.format(**values), source=source
                    ),
                )
            )

        def reply(gap: timedelta, agent: User, text: str, status: str | None = None) -> None:
            body = say(text, agent)
            target = statuses[status] if status else None
            steps.append(
                Step(gap, lambda t: ticket_reply(ticket=t, by=agent, body=body, status=target))
            )

        def note(gap: timedelta, agent: User, text: str) -> None:
            steps.append(Step(gap, lambda t: ticket_note_add(ticket=t, by=agent, body=text)))

        def set_status(gap: timedelta, agent: User, status: str, comment: str = "") -> None:
            steps.append(
                Step(
                    gap,
                    lambda t: ticket_status_set(
                        ticket=t, by=agent, status=statuses[status], comment=comment
                    ),
                )
            )

        # Misrouted: someone in the first department moves it on.
        if misrouted:
            mover = rng.choice(self.pool(department, "ticket.transfer", age=age))
            comment = rng.choice(TRANSFER_COMMENTS)
            target = self.departments[final]
            steps.append(
                Step(
                    hours(rng, 0.1, 4),
                    lambda t: ticket_transfer(
                        ticket=t, by=mover, department=target, comment=comment
                    ),
                )
            )
            department = final

        # Priority: outages get worse, feature requests less urgent.
        if rng.random() < 0.12:
            editor = rng.choice(self.pool(department, "ticket.edit", age=age))
            wanted = {"outage": "Emergency", "feature": "Low"}.get(plan.category, "High")

            def reprioritise(t: Ticket, editor: User = editor, wanted: str = wanted) -> None:
                priority = self.priorities[wanted]
                if t.priority_id == priority.pk:
                    priority = self.priorities["Normal"]
                ticket_priority_set(ticket=t, by=editor, priority=priority)

            steps.append(Step(hours(rng, 0.1, 2), reprioritise))

        team = {SUPPORT: LEVEL1, NETWORK: NETTEAM}.get(department)
        handler = rng.choice(self.handlers(department, age))
        assigner_pool = [a for a in self.pool(department, "ticket.assign", age=age) if a != handler]
        assigner = rng.choice(assigner_pool or [self.admin])

        def assign(gap: timedelta, agent: User | None, team_name: str | None, comment: str = ""):
            team_obj = self.teams[team_name] if team_name else None
            steps.append(
                Step(
                    gap,
                    lambda t: ticket_assign(
                        ticket=t, by=assigner, agent=agent, team=team_obj, comment=comment
                    ),
                )
            )

        if rng.random() < 0.25:
            note(
                hours(rng, 0.1, 3),
                rng.choice(self.pool(department, "view", age=age)),
                rng.choice(NOTES),
            )

        if plan.outcome == OPEN:
            if team and rng.random() < 0.4:
                assign(hours(rng, 0.1, 2), None, team)
            if rng.random() < 0.4:
                if handler.agent.assigned_only:
                    assign(hours(rng, 0.1, 2), handler, None)
                reply(hours(rng, 0.2, 6), handler, rng.choice(category.first_replies))
                customer_says(hours(rng, 1, 24), rng.choice(category.details))
            elif rng.random() < 0.4:
                customer_says(hours(rng, 4, 48), rng.choice(FOLLOW_UPS), collaborator_ok=False)
            return steps

        # Somebody takes it.
        r = rng.random()
        if handler.agent.assigned_only or r < 0.3:
            assign(
                hours(rng, 0.1, 3),
                handler,
                team if team and rng.random() < 0.5 else None,
                rng.choice(["", "", "You know this customer best."]),
            )
        elif r < 0.65:
            steps.append(Step(hours(rng, 0.1, 3), lambda t: ticket_claim(ticket=t, by=handler)))

        # Copy a colleague in later, now and then.
        late_cc = [c for c in colleagues if c not in ctx["collaborators"] and c != owner]
        editors = self.pool(department, "ticket.edit", age=age)
        if late_cc and rng.random() < 0.04:
            who, editor = rng.choice(late_cc), rng.choice(editors)
            ctx["collaborators"].append(who)
            steps.append(
                Step(
                    hours(rng, 0.5, 6),
                    lambda t: ticket_collaborator_add(ticket=t, by=editor, user=who),
                )
            )

        # Referral of a Support ticket to Billing, who leave a note.
        if (
            department == SUPPORT
            and rng.random() < 0.05
            and handler in self.pools[SUPPORT, "ticket.refer"]
        ):
            billing = self.departments[BILLING]
            reader = rng.choice(self.pool(BILLING, "view", age=age))
            steps.append(
                Step(
                    hours(rng, 0.2, 4),
                    lambda t: ticket_refer(ticket=t, by=handler, department=billing),
                )
            )
            note(hours(rng, 0.5, 8), reader, rng.choice(REFERRAL_NOTES))

        if plan.outcome == IN_PROGRESS:
            if rng.random() < 0.5:
                set_status(hours(rng, 0.1, 2), handler, IN_PROGRESS, "Investigating.")
                reply(hours(rng, 0.1, 4), handler, rng.choice(category.first_replies))
            else:
                reply(hours(rng, 0.2, 6), handler, rng.choice(category.first_replies), IN_PROGRESS)
            if rng.random() < 0.5:
                customer_says(hours(rng, 1, 30), rng.choice(category.details + FOLLOW_UPS))
                if rng.random() < 0.5:
                    reply(hours(rng, 0.5, 12), handler, rng.choice(category.questions))
            return steps

        if plan.outcome == WAITING:
            if rng.random() < 0.4:
                reply(hours(rng, 0.2, 6), handler, rng.choice(category.first_replies))
                customer_says(hours(rng, 1, 24), rng.choice(FOLLOW_UPS))
            reply(hours(rng, 0.3, 8), handler, rng.choice(category.questions), WAITING)
            return steps

        # Resolved, closed or archived: an answer, maybe questions, then the solution.
        if rng.random() < 0.5:
            reply(hours(rng, 0.1, 6), handler, rng.choice(category.first_replies), IN_PROGRESS)
        else:
            reply(hours(rng, 0.1, 6), handler, rng.choice(category.first_replies))
        if rng.random() < 0.5:
            reply(hours(rng, 0.5, 8), handler, rng.choice(category.questions))
            customer_says(hours(rng, 1, 36), rng.choice(category.details))
        solver = handler
        if department == SUPPORT and rng.random() < 0.12:
            note(hours(rng, 0.2, 4), handler, rng.choice(ESCALATION_NOTES))
            escalator = handler if handler in self.pools[SUPPORT, "ticket.assign"] else assigner
            level2 = self.teams[LEVEL2]
            steps.append(
                Step(
                    hours(rng, 0.01, 0.2),
                    lambda t: ticket_assign(
                        ticket=t, by=escalator, team=level2, comment="Escalated to Level II"
                    ),
                )
            )
            solver = rng.choice(self.level2)
        can_close = solver in self.pools[department, "ticket.close"]
        closers = self.pool(department, "ticket.close", age=age)
        closer = solver if can_close else rng.choice(closers)
        solution = rng.choice(category.solutions)

        def solve(gap: timedelta, status: str) -> None:
            if can_close:
                reply(gap, solver, solution, status)
            else:
                reply(gap, solver, solution)
                set_status(hours(rng, 0.5, 24), closer, status, rng.choice(CLOSE_COMMENTS))

        if plan.outcome == RESOLVED:
            solve(hours(rng, 1, 48), RESOLVED)
        else:
            r = rng.random()
            if r < 0.4:
                reply(hours(rng, 1, 48), solver, solution)
                customer_says(hours(rng, 0.5, 24), rng.choice(THANKS))
                set_status(hours(rng, 0.1, 8), closer, CLOSED, "Customer confirmed the fix.")
            elif r < 0.55 and owner.has_usable_password() and settings.HELPDESK_CUSTOMERS_CAN_CLOSE:
                reply(hours(rng, 1, 48), solver, solution)
                steps.append(
                    Step(
                        hours(rng, 0.5, 24),
                        lambda t: ticket_status_set(
                            ticket=t, by=owner, status=statuses[CLOSED], comment="Works now."
                        ),
                    )
                )
            elif r < 0.75:
                solve(hours(rng, 1, 48), RESOLVED)
                set_status(hours(rng, 48, 96), closer, CLOSED, "No reply for three days; closing.")
            else:
                solve(hours(rng, 1, 48), CLOSED)

        # It came back: the customer's message reopens it and it is fixed for good.
        if rng.random() < 0.12:
            customer_says(hours(rng, 24, 96), rng.choice(STILL_BROKEN), collaborator_ok=False)
            second = rng.choice(SECOND_FIXES)
            final_status = RESOLVED if plan.outcome == RESOLVED else CLOSED
            if can_close:
                reply(hours(rng, 0.5, 12), solver, second, final_status)
            else:
                reply(hours(rng, 0.5, 12), solver, second)
                set_status(hours(rng, 0.5, 24), closer, final_status, "Fixed again.")

        if plan.outcome == ARCHIVED:
            archiver = self.admin if rng.random() < 0.5 else closer
            set_status(timedelta(days=rng.uniform(20, 40)), archiver, ARCHIVED, "Archived.")
        return steps

    def department_of(self, topic: HelpTopic) -> str:
        for name, department in self.departments.items():
            if department.pk == topic.department_id:
                return name
        for name, department in self.departments.items():
            if department.pk == self.default_department.pk:
                return name
        raise CommandError(f"The default department {self.default_department} is unknown.")

    # --- finishing --------------------------------------------------------------------------

    def _backdate_setup(self) -> None:
        """The people and routing existed before the first ticket."""
        start = self.since
        for model, pks in self.created_at_backdate:
            fields = {"created_at": start}
            if any(f.name == "updated_at" for f in model._meta.get_fields()):
                fields["updated_at"] = start
            model.objects.filter(pk__in=pks).update(**fields)
        User.objects.filter(pk__in=self.user_ids).update(created_at=start)
        UserEmail.objects.filter(user_id__in=self.user_ids).update(created_at=start)
        # Senders who first wrote in with a ticket (the spammer) appeared with it.
        for user_id, first in self.first_seen.items():
            User.objects.filter(pk=user_id).update(created_at=first)
            UserEmail.objects.filter(user_id=user_id).update(created_at=first)


LOGIN_ROWS = [
    (ADMIN_EMAIL, ADMIN_PASSWORD, "Superuser and agent (Administrator, Support)"),
    (AGENT_EMAIL, AGENT_PASSWORD, AGENTS[0].what),
    (CUSTOMER_EMAIL, CUSTOMER_PASSWORD, "Customer at Acme Corp (shares tickets)"),
]


class Command(BaseCommand):
    help = "Fill an empty help desk with realistic demo data and print the demo logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--tickets",
            type=int,
            default=DEFAULT_TICKETS,
            help=f"How many tickets to open (default {DEFAULT_TICKETS}).",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            help="Seed of the random choices; the same seed gives the same demo.",
        )

    def handle(self, *args: Any, tickets: int, seed: int, **options: Any) -> None:
        if not 1 <= tickets <= 100_000:
            raise CommandError("--tickets takes a number from 1 to 100000.")
        existing = Ticket.objects.count()
        if existing:
            self.stdout.write(
                f"The database already has data ({existing} tickets); demo_data only fills an "
                "empty help desk. Nothing changed."
            )
            self._logins()
            return
        started = time.monotonic()
        builder = DemoBuilder(seed=seed, tickets=tickets, now=timezone.now())
        try:
            # Demo customers and agents have made-up addresses: no mail goes out for them.
            with mail_out_suppressed(), transaction.atomic():
                builder.build()
        except (ValidationError, PermissionDenied) as error:
            raise CommandError(
                f"Creating the demo data failed, nothing was kept: {error}"
            ) from error
        elapsed = time.monotonic() - started
        self.stdout.write(self.style.SUCCESS(f"Demo data created in {elapsed:.1f} s."))
        self._summary()
        self._logins()

    def _summary(self) -> None:
        out = self.stdout.write
        by_status = Counter(
            dict(Ticket.objects.values_list("status__name").annotate(n=Count("pk")))
        )
        by_kind = Counter(dict(ThreadEntry.objects.values_list("kind").annotate(n=Count("pk"))))
        statuses = " · ".join(
            f"{status.name} {by_status.get(status.name, 0)}"
            for status in TicketStatus.objects.all()
        )
        agents = Agent.objects.filter(is_active=True).count()
        rows = [
            (
                "Departments",
                Department.objects.count(),
                ", ".join(d.full_name for d in Department.objects.select_related("parent")),
            ),
            ("Help topics", HelpTopic.objects.count(), ""),
            ("Teams", Team.objects.count(), ", ".join(Team.objects.values_list("name", flat=True))),
            ("Agents", agents, ""),
            ("Organizations", Organization.objects.count(), ""),
            ("Customers", User.objects.filter(agent__isnull=True).count(), ""),
            ("Tickets", Ticket.objects.count(), statuses),
            (
                "Thread entries",
                sum(by_kind.values()),
                f"{by_kind[EntryKind.MESSAGE]} messages, {by_kind[EntryKind.RESPONSE]} "
                f"responses, {by_kind[EntryKind.NOTE]} notes",
            ),
            ("Events", ThreadEvent.objects.count(), ""),
        ]
        out("")
        for label, count, detail in rows:
            out(f"  {label:<15}{count:>6}   {detail}".rstrip())

    def _logins(self) -> None:
        out = self.stdout.write
        rows = [("Email", "Password", "What")]
        wanted = [row[0] for row in LOGIN_ROWS] + [spec.email for spec in AGENTS[1:]]
        emails = set(
            UserEmail.objects.filter(email__in=[*wanted, PORTAL_CUSTOMER]).values_list(
                "email", flat=True
            )
        )
        rows += [row for row in LOGIN_ROWS if row[0] in emails]
        rows += [
            (spec.email, AGENT_PASSWORD, spec.what) for spec in AGENTS[1:] if spec.email in emails
        ]
        if len(rows) == 1:
            return
        site = settings.SITE_URL
        out("")
        out(self.style.MIGRATE_HEADING("Demo logins"))
        width = [max(len(row[i]) for row in rows) for i in range(2)]
        for email, password, what in rows:
            out(f"  {email:<{width[0]}}  {password:<{width[1]}}  {what}")
        out("")
        out(f"  Customer portal:  {site}/")
        out(f"  Staff panel:      {site}/scp/")
        out(f"  Django admin:     {site}/admin/   (superuser only)")
        if PORTAL_CUSTOMER in emails:
            out(
                "  Customers who only emailed have no password; a few, such as "
                f"{PORTAL_CUSTOMER}, also sign in with {CUSTOMER_PASSWORD}."
            )
