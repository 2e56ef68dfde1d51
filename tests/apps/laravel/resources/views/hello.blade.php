@extends('layout')

@section('title', 'Hello')

@section('body')
<h1>Hello, {{ $name }}!</h1>
<p><a href="{{ route('home', [], false) }}">Notes</a></p>
@endsection
