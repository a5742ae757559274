"""A form with Django's CSRF protection: the token comes in a cookie and a hidden field."""

from django import forms
from django.shortcuts import render


class ContactForm(forms.Form):
    name = forms.CharField(max_length=50)
    message = forms.CharField(widget=forms.Textarea)


def contact(request):
    if request.method == "POST":
        form = ContactForm(request.POST)
        if form.is_valid():
            return render(request, "thanks.html", {"name": form.cleaned_data["name"]})
    else:
        form = ContactForm()
    return render(request, "contact.html", {"form": form})
