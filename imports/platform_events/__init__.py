"""Members pushed by the platforms (入会): a store's platform (Tmall, Douyin shop, WeChat
member cards, or any other through Standard Webhooks) pushes joins, updates and unbinds to
``/api/v1/platform-events/<store code>/``; ``adapters`` checks and reads them, ``service``
applies them. docs/platforms.md shows how to connect each platform, with its payloads."""
