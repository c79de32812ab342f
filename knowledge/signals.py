"""Integrity rules the database cannot express on its own."""

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete
from django.dispatch import receiver

from knowledge.models import KnowledgeDocument


@receiver(m2m_changed, sender=KnowledgeDocument.bots.through)
def bots_of_same_company(sender, instance, action, pk_set, model, **kwargs):
    """A document serves only bots of its own company, whichever side the link is made from."""
    if action != "pre_add" or not pk_set:
        return
    if isinstance(instance, KnowledgeDocument):
        foreign = model.objects.filter(pk__in=pk_set).exclude(company_id=instance.company_id)
    else:  # bot.knowledge_documents.add(...)
        foreign = model.objects.filter(pk__in=pk_set).exclude(company_id=instance.company_id)
    if foreign.exists():
        raise ValueError("A knowledge document can only serve bots of its own company.")


@receiver(post_delete, sender=KnowledgeDocument)
def delete_stored_file(sender, instance, **kwargs):
    if instance.file:
        name, storage = instance.file.name, instance.file.storage
        transaction.on_commit(lambda: storage.delete(name))
