"""The starting texts of a new brand (``consent.onboarding``, and the demo): the membership
agreement, and per default purpose its name, a paragraph on what it means for the person,
and its notice, in the four languages of the privacy center. They are templates:
``{brand}`` is the brand's name; the privacy officer reviews them (Purposes; Notice drafts)
and publishes new versions before the brand goes live.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LOCALES = ("zh-hans", "zh-hant", "en", "ru")

AGREEMENT = {
    "zh-hans": (
        "会员协议",
        "欢迎加入{brand}会员。成为会员后，我们会使用您提供的手机号、姓名和购物记录为您提供会员服务："
        "积分、等级和会员权益。我们只按本协议和隐私政策处理您的个人信息，不会出售您的信息。"
        "营销信息、个性化推荐和向第三方提供信息都需要您另行同意，您可以随时在隐私中心撤回同意、"
        "查看或删除您的数据。",
    ),
    "zh-hant": (
        "會員協議",
        "歡迎加入{brand}會員。成為會員後，我們會使用您提供的手機號碼、姓名和購物紀錄為您提供會員服務："
        "積分、等級和會員權益。我們只按本協議和隱私政策處理您的個人資料，不會出售您的資料。"
        "行銷資訊、個人化推薦和向第三方提供資料都需要您另行同意，您可以隨時在隱私中心撤回同意、"
        "查看或刪除您的資料。",
    ),
    "en": (
        "Membership agreement",
        "Welcome to {brand} membership. As a member, we use the phone number, name and purchase history you give "
        "us to run your membership: points, tiers and member benefits. We process your personal information only "
        "as this agreement and our privacy policy say, and we never sell it. Marketing messages, personalised "
        "recommendations and sharing with third parties each need your separate consent; in the privacy center "
        "you can withdraw consent, see your data or have it deleted at any time.",
    ),
    "ru": (
        "Соглашение об участии",
        "Добро пожаловать в клуб {brand}. Для участия мы используем ваш номер телефона, имя и историю покупок: "
        "баллы, уровни и привилегии участника. Мы обрабатываем ваши персональные данные только так, как сказано "
        "в этом соглашении и политике конфиденциальности, и никогда их не продаём. Рекламные сообщения, "
        "персональные рекомендации и передача данных третьим лицам требуют отдельного согласия; в центре "
        "конфиденциальности вы в любой момент можете отозвать согласие, посмотреть свои данные или удалить их.",
    ),
}


@dataclass(frozen=True)
class PurposeText:
    code: str
    names: dict[str, str]
    # One paragraph per language: what saying yes means for the person, and saying no.
    descriptions: dict[str, str]
    notices: dict[str, tuple[str, str]]  # language → (title, text)
    channels: list[str] = field(default_factory=list)
    marketing: bool = False
    separate: bool = False  # PIPL: asked on its own, never bundled or pre-ticked
    # Sale or sharing with third parties: what a Global Privacy Control signal opts out of.
    sale_or_sharing: bool = False


MEMBERSHIP = PurposeText(
    code="membership",
    names={"zh-hans": "会员服务", "zh-hant": "會員服務", "en": "Membership", "ru": "Участие в клубе"},
    descriptions={
        "zh-hans": "我们用您的手机号、姓名和在{brand}各门店的购物记录来运行您的会员账户：累计和使用积分、计算等级、"
        "提供会员价和会员活动。这是成为会员的前提，不用于营销；退出会员后我们停止处理，并按法律规定的期限删除这些数据。",
        "zh-hant": "我們用您的手機號碼、姓名和在{brand}各門市的購物紀錄來運作您的會員帳戶：累積和使用積分、計算等級、"
        "提供會員價和會員活動。這是成為會員的前提，不用於行銷；退出會員後我們停止處理，並按法律規定的期限刪除這些資料。",
        "en": "We use your phone number, name and purchases in {brand}'s stores to run your membership account: "
        "collecting and spending points, working out your tier, and giving you member prices and member events. "
        "Membership needs this, and it is not used for marketing; when you leave the membership we stop, and delete "
        "the data within the period the law allows.",
        "ru": "Мы используем ваш номер телефона, имя и покупки в магазинах {brand}, чтобы вести ваш клубный счёт: "
        "начислять и списывать баллы, определять уровень, давать цены и приглашения для участников. Это нужно для "
        "участия в клубе и не используется для рекламы; когда вы выходите из клуба, мы прекращаем обработку и "
        "удаляем данные в сроки, установленные законом.",
    },
    notices={
        "zh-hans": ("会员服务", "为您提供{brand}会员服务：积分、等级、会员价和会员活动。退出会员后不再处理。"),
        "zh-hant": ("會員服務", "為您提供{brand}會員服務：積分、等級、會員價和會員活動。退出會員後不再處理。"),
        "en": (
            "Membership",
            "To run your {brand} membership: points, tiers, member prices and member events. "
            "Ends when you leave the membership.",
        ),
        "ru": (
            "Участие в клубе",
            "Для участия в клубе {brand}: баллы, уровни, цены и мероприятия для участников. "
            "Прекращается, когда вы выходите из клуба.",
        ),
    },
)

MARKETING = PurposeText(
    code="marketing",
    names={"zh-hans": "营销信息", "zh-hant": "行銷資訊", "en": "Marketing messages", "ru": "Рекламные сообщения"},
    descriptions={
        "zh-hans": "开启后，{brand}可以通过您开启的渠道（短信、邮件、微信）向您发送优惠、新品和活动信息，次数不超过您在偏好中"
        "设定的每周上限，也不会在免打扰时段发送。关闭某个渠道后，该渠道立即不再收到营销信息；您的会员权益不受影响。",
        "zh-hant": "開啟後，{brand}可以透過您開啟的管道（簡訊、電郵、微信）向您發送優惠、新品和活動資訊，次數不超過您在偏好中"
        "設定的每週上限，也不會在勿擾時段發送。關閉某個管道後，該管道立即不再收到行銷資訊；您的會員權益不受影響。",
        "en": "When this is on, {brand} may send you offers, new arrivals and event invitations on the channels you "
        "switch on (SMS, e-mail, WeChat), never more often than the weekly limit in your preferences and never during "
        "your quiet hours. Turning a channel off stops marketing on it at once; your member benefits stay the same.",
        "ru": "Если согласие включено, {brand} может присылать вам предложения, новинки и приглашения по включённым "
        "вами каналам (SMS, электронная почта, WeChat), не чаще недельного лимита из ваших настроек и не в часы "
        "тишины. Выключив канал, вы сразу перестаёте получать по нему рекламу; привилегии участника сохраняются.",
    },
    notices={
        "zh-hans": (
            "营销信息",
            "我同意{brand}通过短信、邮件和微信向我发送优惠、新品和活动信息。每周不超过我设定的次数，"
            "可随时回复 TD 或在隐私中心退订。",
        ),
        "zh-hant": (
            "行銷資訊",
            "我同意{brand}透過簡訊、電郵和微信向我發送優惠、新品和活動資訊。每週不超過我設定的次數，"
            "可隨時回覆 TD 或在隱私中心退訂。",
        ),
        "en": (
            "Marketing messages",
            "I agree that {brand} may send me offers, new arrivals and events by SMS, "
            "e-mail and WeChat, no more often than I choose; I can unsubscribe at any time by replying TD or "
            "in the privacy center.",
        ),
        "ru": (
            "Рекламные сообщения",
            "Я согласен(на) получать от {brand} предложения, новинки и приглашения по SMS, "
            "электронной почте и в WeChat не чаще, чем я выберу; отписаться можно в любой момент, ответив TD "
            "или в центре конфиденциальности.",
        ),
    },
    channels=["sms", "email", "wechat"],
    marketing=True,
)

PERSONALIZATION = PurposeText(
    code="personalization",
    names={
        "zh-hans": "个性化推荐",
        "zh-hant": "個人化推薦",
        "en": "Personalised recommendations",
        "ru": "Персональные рекомендации",
    },
    descriptions={
        "zh-hans": "开启后，{brand}会根据您的购物记录、浏览过的商品和您填写的偏好为您挑选商品和内容，让您看到的更符合您的兴趣。"
        "关闭后，您看到的推荐不再基于您的个人数据，而是和其他人一样的通用推荐。",
        "zh-hant": "開啟後，{brand}會根據您的購物紀錄、瀏覽過的商品和您填寫的偏好為您挑選商品和內容，讓您看到的更符合您的興趣。"
        "關閉後，您看到的推薦不再基於您的個人資料，而是和其他人一樣的通用推薦。",
        "en": "When this is on, {brand} picks the products and content it shows you from your purchases, the products "
        "you looked at and the preferences you set, so that what you see fits your interests. When it is off, "
        "recommendations no longer use your personal data: you see the same general ones as everybody else.",
        "ru": "Если согласие включено, {brand} подбирает товары и материалы по вашим покупкам, просмотренным товарам "
        "и указанным предпочтениям, чтобы показывать то, что вам интересно. Если выключено, рекомендации не "
        "используют ваши персональные данные: вы видите те же общие подборки, что и все.",
    },
    notices={
        "zh-hans": (
            "个性化推荐",
            "{brand}根据您的购物记录和偏好为您推荐商品和内容。撤回后您看到的推荐不再基于您的数据。",
        ),
        "zh-hant": (
            "個人化推薦",
            "{brand}根據您的購物紀錄和偏好為您推薦商品和內容。撤回後您看到的推薦不再基於您的資料。",
        ),
        "en": (
            "Personalised recommendations",
            "{brand} recommends products and content from your purchases and "
            "preferences. After you withdraw, what you are shown no longer uses your data.",
        ),
        "ru": (
            "Персональные рекомендации",
            "{brand} подбирает товары и материалы по вашим покупкам и "
            "предпочтениям. После отзыва согласия рекомендации больше не основаны на ваших данных.",
        ),
    },
)

ANALYTICS = PurposeText(
    code="analytics",
    names={"zh-hans": "会员数据分析", "zh-hant": "會員資料分析", "en": "Member analytics", "ru": "Аналитика"},
    descriptions={
        "zh-hans": "开启后，您的会员和购物数据会与其他会员的数据一起做汇总统计，帮助{brand}决定开哪些门店、备哪些商品、"
        "改进哪些服务。报告里只有汇总数字，不会出现您的姓名或联系方式，也不会用来单独联系您。",
        "zh-hant": "開啟後，您的會員和購物資料會與其他會員的資料一起做彙總統計，幫助{brand}決定開哪些門市、備哪些商品、"
        "改進哪些服務。報告裡只有彙總數字，不會出現您的姓名或聯絡方式，也不會用來單獨聯絡您。",
        "en": "When this is on, your membership and purchase data is counted together with other members' to help "
        "{brand} decide which stores to open, which products to stock and which services to improve. Reports hold "
        "totals only, never your name or contact details, and are never used to contact you.",
        "ru": "Если согласие включено, ваши данные об участии и покупках учитываются вместе с данными других "
        "участников, чтобы {brand} решал, какие магазины открывать, какие товары закупать и что улучшать. В отчётах "
        "только общие цифры, без вашего имени и контактов, и по ним с вами никто не связывается.",
    },
    notices={
        "zh-hans": ("会员数据分析", "{brand}以汇总方式分析会员数据，用于改进商品和服务；分析结果不识别到个人。"),
        "zh-hant": ("會員資料分析", "{brand}以彙總方式分析會員資料，用於改進商品和服務；分析結果不識別到個人。"),
        "en": (
            "Member analytics",
            "{brand} analyses member data in aggregate to improve its products and "
            "services; the results do not identify you.",
        ),
        "ru": (
            "Аналитика",
            "{brand} анализирует данные участников в обобщённом виде, чтобы улучшать товары и "
            "сервис; результаты не позволяют вас идентифицировать.",
        ),
    },
)

THIRD_PARTY_SHARING = PurposeText(
    code="third_party_sharing",
    names={
        "zh-hans": "向第三方提供",
        "zh-hant": "向第三方提供",
        "en": "Sharing with third parties",
        "ru": "Передача третьим лицам",
    },
    descriptions={
        "zh-hans": "这是一项单独同意：开启后，{brand}会把您的手机号和会员等级提供给合作的物流和售后服务商，仅用于为您配送"
        "商品和维修，他们不得用于其他目的。不开启时，您可能需要在每次下单或报修时自己提供联系方式。",
        "zh-hant": "這是一項單獨同意：開啟後，{brand}會把您的手機號碼和會員等級提供給合作的物流和售後服務商，僅用於為您配送"
        "商品和維修，他們不得用於其他目的。不開啟時，您可能需要在每次下單或報修時自行提供聯絡方式。",
        "en": "This is a separate consent: when it is on, {brand} gives your phone number and member tier to its "
        "delivery and after-sales partners, only so that they can deliver your orders and repair your products; "
        "they may not use them for anything else. Without it you may need to give your contact details yourself "
        "each time you order or ask for a repair.",
        "ru": "Это отдельное согласие: если оно включено, {brand} передаёт ваш телефон и уровень участника партнёрам "
        "по доставке и сервису, только чтобы доставлять заказы и ремонтировать товары; для других целей они их "
        "использовать не могут. Без него вам, возможно, придётся каждый раз самим сообщать контакты при заказе "
        "или ремонте.",
    },
    notices={
        "zh-hans": (
            "向第三方提供个人信息",
            "经您单独同意，{brand}会将您的手机号和会员等级提供给合作的物流和售后服务商，仅用于为您配送和维修。",
        ),
        "zh-hant": (
            "向第三方提供個人資料",
            "經您單獨同意，{brand}會將您的手機號碼和會員等級提供給合作的物流和售後服務商，僅用於為您配送和維修。",
        ),
        "en": (
            "Sharing with third parties",
            "With your separate consent, {brand} gives your phone number and "
            "member tier to its delivery and after-sales partners, only to deliver and repair for you.",
        ),
        "ru": (
            "Передача третьим лицам",
            "С вашего отдельного согласия {brand} передаёт ваш телефон и уровень "
            "участника партнёрам по доставке и сервису — только для доставки и ремонта.",
        ),
    },
    separate=True,
    sale_or_sharing=True,
)

# Not a default: a brand that sends data abroad adds it (the demo does).
CROSS_BORDER_TRANSFER = PurposeText(
    code="cross_border_transfer",
    names={
        "zh-hans": "跨境传输",
        "zh-hant": "跨境傳輸",
        "en": "Cross-border transfer",
        "ru": "Трансграничная передача",
    },
    descriptions={
        "zh-hans": "这是一项单独同意：开启后，{brand}可以把您的会员资料和购物记录传输到境外的集团总部，用于全球会员权益，"
        "例如在境外门店使用积分。境外接收方须按不低于中国法律的标准保护您的信息。不开启时，您的数据只保存在境内，"
        "境外门店无法识别您的会员身份。",
        "zh-hant": "這是一項單獨同意：開啟後，{brand}可以把您的會員資料和購物紀錄傳輸到境外的集團總部，用於全球會員權益，"
        "例如在境外門市使用積分。境外接收方須按不低於中國法律的標準保護您的資料。不開啟時，您的資料只保存在境內，"
        "境外門市無法識別您的會員身份。",
        "en": "This is a separate consent: when it is on, {brand} may transfer your membership details and purchases "
        "to its group headquarters abroad, for worldwide member benefits such as spending your points in stores "
        "outside China. The recipient must protect your data at least as well as Chinese law requires. Without it "
        "your data stays in China, and stores abroad cannot recognise you as a member.",
        "ru": "Это отдельное согласие: если оно включено, {brand} может передавать ваши данные участника и историю "
        "покупок в головной офис группы за рубежом для привилегий по всему миру, например чтобы тратить баллы в "
        "зарубежных магазинах. Получатель обязан защищать ваши данные не хуже, чем требует закон Китая. Без него "
        "ваши данные остаются в Китае, а зарубежные магазины не узнают вас как участника.",
    },
    notices={
        "zh-hans": (
            "跨境传输个人信息",
            "经您单独同意，{brand}会将您的会员资料和购物记录传输至境外集团总部，仅用于全球会员权益。"
            "您可随时在隐私中心撤回。",
        ),
        "zh-hant": (
            "跨境傳輸個人資料",
            "經您單獨同意，{brand}會將您的會員資料和購物紀錄傳輸至境外集團總部，僅用於全球會員權益。"
            "您可隨時在隱私中心撤回。",
        ),
        "en": (
            "Cross-border transfer",
            "With your separate consent, {brand} transfers your membership details and purchases to its group "
            "headquarters abroad, only for worldwide member benefits. You can withdraw at any time in the "
            "privacy center.",
        ),
        "ru": (
            "Трансграничная передача",
            "С вашего отдельного согласия {brand} передаёт ваши данные участника и историю покупок в головной "
            "офис группы за рубежом — только для привилегий по всему миру. Отозвать согласие можно в любой "
            "момент в центре конфиденциальности.",
        ),
    },
    separate=True,
)

# The purposes every new brand starts with.
PURPOSES = [MEMBERSHIP, MARKETING, PERSONALIZATION, ANALYTICS, THIRD_PARTY_SHARING]
ALL_PURPOSES = {text.code: text for text in [*PURPOSES, CROSS_BORDER_TRANSFER]}


def purpose_fields(text: PurposeText, brand_name: str) -> dict[str, str]:
    """The translated columns of a new purpose: ``name_en``, ``description_ru``, …"""
    from modeltranslation.utils import build_localized_fieldname

    values = {}
    for locale in LOCALES:
        values[build_localized_fieldname("name", locale)] = text.names[locale]
        values[build_localized_fieldname("description", locale)] = text.descriptions[locale].format(brand=brand_name)
    return values
