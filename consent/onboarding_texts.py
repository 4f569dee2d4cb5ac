"""The starting texts of a new brand (``consent.onboarding``): the membership agreement and
one notice per default purpose, in the four languages of the privacy center. They are
templates: ``{brand}`` is the brand's name; the privacy officer reviews and publishes new
versions in the admin (Notices › "Publish a new version") before the brand goes live.
"""

from __future__ import annotations

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

# code, name (the admin's and the privacy center's label), channels, marketing, separate
# consent (PIPL: asked on its own), and the notice per language.
PURPOSES: list[tuple[str, str, list[str], bool, bool, dict[str, tuple[str, str]]]] = [
    (
        "membership",
        "会员服务",
        [],
        False,
        False,
        {
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
    ),
    (
        "marketing",
        "营销信息",
        ["sms", "email", "wechat"],
        True,
        False,
        {
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
    ),
    (
        "personalization",
        "个性化推荐",
        [],
        False,
        False,
        {
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
    ),
    (
        "analytics",
        "会员数据分析",
        [],
        False,
        False,
        {
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
    ),
    (
        "third_party_sharing",
        "向第三方提供",
        [],
        False,
        True,
        {
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
    ),
]
