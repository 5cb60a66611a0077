from django.urls import path

from .views import conversations, data, manifest, pages, sharing

urlpatterns = [
    path("manifest.webmanifest", manifest.web_manifest, name="web_manifest"),
    path("c/new/", conversations.conversation_create, name="conversation_create"),
    path("c/list/", conversations.conversation_list, name="conversation_list"),
    path("c/<str:conversation_id>/", pages.conversation_detail, name="conversation"),
    path("c/<str:conversation_id>/sync.json", pages.conversation_sync, name="conversation_sync"),
    path("c/<str:conversation_id>/rename/", conversations.conversation_rename, name="conversation_rename"),
    path("c/<str:conversation_id>/delete/", conversations.conversation_delete, name="conversation_delete"),
    path("c/<str:conversation_id>/flags/", conversations.conversation_flags, name="conversation_flags"),
    path("c/<str:conversation_id>/move/", conversations.conversation_move, name="conversation_move"),
    path("c/<str:conversation_id>/branch/", conversations.conversation_branch, name="conversation_branch"),
    path("c/<str:conversation_id>/fork/", conversations.conversation_fork, name="conversation_fork"),
    path("c/<str:conversation_id>/stop/", conversations.conversation_stop, name="conversation_stop"),
    path("c/<str:conversation_id>/shares/", sharing.conversation_shares, name="conversation_shares"),
    path("c/<str:conversation_id>/shares/<int:user_id>/remove/", sharing.conversation_share_remove, name="conversation_share_remove"),
    path("c/<str:conversation_id>/links/", sharing.share_link_create, name="share_link_create"),
    path("c/<str:conversation_id>/links/<int:link_id>/revoke/", sharing.share_link_revoke, name="share_link_revoke"),
    path("s/<str:token>/", sharing.share_link_page, name="share_link"),
    path("s/<str:token>/fork/", sharing.share_link_fork, name="share_link_fork"),
    path("search/", data.search_page, name="search"),
    path("search.json", data.search_json, name="search_json"),
    path("c/<str:conversation_id>/export.md", data.export_markdown, name="conversation_export_md"),
    path("c/<str:conversation_id>/export.json", data.export_json, name="conversation_export_json"),
    path("export/all.zip", data.export_all, name="export_all"),
    path("import/", data.import_upload, name="data_import"),
    path("settings/data/", data.data_page, name="data_settings"),
    path("settings/data/all.zip", data.personal_data_export, name="personal_data_export"),
    path("settings/data/delete-account/", data.account_delete, name="account_delete"),
]
